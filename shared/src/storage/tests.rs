use proptest::prelude::*;

use super::*;

#[test]
fn table_names_are_short_identifiers_not_paths() {
    for ok in ["tasks", "Notes_2", "a", "check-points"] {
        assert!(TableName::parse(ok, "table").is_ok(), "{ok}");
    }
    for bad in [
        "",
        "a/b",
        "..",
        "../x",
        "a b",
        "-x",
        "tab\u{0}",
        &"x".repeat(65),
        "é",
    ] {
        assert_eq!(
            TableName::parse(bad, "table").unwrap_err().field,
            "table",
            "{bad:?}"
        );
    }
}

#[test]
fn checksums_are_64_hex_characters_and_compare_exactly() {
    let c = Checksum::of(b"abc");
    assert_eq!(
        c.as_str(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        Checksum::parse(&c.as_str().to_uppercase(), "checksum").unwrap(),
        c
    );
    assert!(c.matches(b"abc"));
    assert!(!c.matches(b"abd"));
    for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(65)] {
        assert!(Checksum::parse(bad, "checksum").is_err(), "{bad}");
    }
    assert_eq!(hex::encode(c.digest()), c.as_str());
}

#[test]
fn if_match_is_strong_and_if_none_match_is_weak() {
    let tag = etag(3, "ba7816bf8f01cfea414140de5dae2223");
    assert_eq!(tag, "\"3.ba7816bf8f01cfea\"");
    assert!(if_match_allows(None, &tag));
    assert!(if_match_allows(Some("*"), &tag));
    assert!(if_match_allows(Some(&format!("\"x\", {tag}")), &tag));
    assert!(!if_match_allows(Some("\"2.ba7816bf8f01cfea\""), &tag));
    assert!(!if_match_allows(Some(&format!("W/{tag}")), &tag));
    assert!(if_none_match_hits(Some(&format!("W/{tag}")), &tag));
    assert!(!if_none_match_hits(None, &tag));
}

proptest! {
    #[test]
    fn cursors_round_trip(u in 0i64..999_999_999_999_999, i in "[a-f0-9-]{1,36}") {
        let c = Cursor { u, i };
        prop_assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn foreign_cursors_are_refused_not_crashed(s in "\\PC{0,80}") {
        let _ = Cursor::decode(&s);
    }
}
