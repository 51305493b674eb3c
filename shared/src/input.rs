//! Turning raw request bodies into typed values, with the API's error codes.
//!
//! The worker reads at most [`JSON_BODY_LIMIT`] bytes of a JSON body (413 past that) and hands
//! them here with the `Content-Type` header: a wrong media type is 415, bytes that are not JSON
//! are 400 `malformed_json`, and JSON of the wrong shape is 422 `validation_failed` naming the
//! field. A body never causes a 500.

use serde::de::DeserializeOwned;

use crate::error::{AppError, FieldError};

/// The largest JSON body any endpoint accepts (bytes). Blob endpoints take raw bodies instead.
pub const JSON_BODY_LIMIT: u64 = 1024 * 1024;

/// Whether `content_type` is JSON (`application/json`, any parameters, any case).
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Checks a declared `Content-Length` against `limit`.
///
/// # Errors
/// [`AppError::PayloadTooLarge`] when the declared length exceeds `limit`.
pub fn check_length(declared: Option<u64>, limit: u64) -> Result<(), AppError> {
    match declared {
        Some(len) if len > limit => Err(AppError::PayloadTooLarge { limit }),
        _ => Ok(()),
    }
}

/// Parses a JSON request body.
///
/// # Errors
/// 415 for a non-JSON content type, 400 `malformed_json` for invalid syntax, 422
/// `validation_failed` (with the field path) for JSON of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, AppError> {
    if !is_json(content_type) {
        return Err(AppError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        classify(&path, &inner)
    })?;
    // Trailing bytes after the value (`{...} garbage`) are malformed too.
    de.end().map_err(|e| classify(".", &e))?;
    Ok(value)
}

fn classify(path: &str, e: &serde_json::Error) -> AppError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => AppError::MalformedJson(format!(
            "{} at line {} column {}",
            syntax_reason(e),
            e.line(),
            e.column()
        )),
        Category::Data => {
            let field = if path == "." { "body" } else { path };
            // serde's message ends with " at line L column C"; the path already says where.
            let message = e.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m);
            AppError::Validation(vec![FieldError::new(field, message)])
        }
    }
}

fn syntax_reason(e: &serde_json::Error) -> &'static str {
    if e.is_eof() {
        "unexpected end of input"
    } else {
        "invalid JSON"
    }
}

/// Deserialises an optional `u32` from any JSON number with no fractional part (`7` or `7.0`):
/// JSON Schema counts both as integers, so the contract's clients may send either.
///
/// # Errors
/// The deserializer's error for fractions, negatives, out-of-range values and non-numbers.
pub fn opt_integral_u32<'de, D>(de: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    use serde::Deserialize;
    let Some(n) = Option::<serde_json::Number>::deserialize(de)? else {
        return Ok(None);
    };
    let value = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let v = f as u64;
                v
            })
    });
    value
        .and_then(|v| u32::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "expected a whole number from 0 to {}, got {n}",
                u32::MAX
            ))
        })
}

/// Deserialises a `u32` as [`opt_integral_u32`] does, `null` refused.
///
/// # Errors
/// The deserializer's error for `null`, fractions, negatives, out-of-range values and
/// non-numbers.
pub fn integral_u32<'de, D>(de: D) -> Result<u32, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    opt_integral_u32(de)?.ok_or_else(|| D::Error::custom("expected a whole number, got null"))
}

/// Deserialises an `i64` from any JSON number with no fractional part (`7` or `7.0`), as
/// [`opt_integral_u32`] does.
///
/// # Errors
/// The deserializer's error for fractions, out-of-range values and non-numbers.
pub fn integral_i64<'de, D>(de: D) -> Result<i64, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    use serde::Deserialize;
    let n = serde_json::Number::deserialize(de)?;
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15)
                .map(|f| {
                    #[allow(clippy::cast_possible_truncation)]
                    let v = f as i64;
                    v
                })
        })
        .ok_or_else(|| D::Error::custom(format!("expected a whole number, got {n}")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
        #[serde(default)]
        devices: Vec<u32>,
    }

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn json_with_charset_is_accepted() {
        let r: Login = parse_json(
            Some("Application/JSON; charset=utf-8"),
            br#"{"email":"a@b.c","password":"x"}"#,
        )
        .unwrap();
        assert_eq!(r.email, "a@b.c");
    }

    #[test]
    fn a_missing_or_foreign_content_type_is_415() {
        for ct in [None, Some("text/plain"), Some("application/jsonx")] {
            let e = parse_json::<Login>(ct, b"{}").unwrap_err();
            assert_eq!(e.status(), 415, "{ct:?}");
        }
    }

    #[test]
    fn broken_syntax_is_400_malformed_json() {
        for body in [
            &b"{"[..],
            b"{\"email\":",
            b"not json",
            b"",
            br#"{"email":"a","password":"b",}"#,
            br#"{"email":"a","password":"b"} trailing"#,
        ] {
            let e = parse_json::<Login>(JSON, body).unwrap_err();
            assert_eq!(e.code(), "malformed_json", "{body:?}");
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn a_missing_field_is_422_naming_the_body() {
        let e = parse_json::<Login>(JSON, br#"{"email":"a@b.c"}"#).unwrap_err();
        let AppError::Validation(fields) = e else {
            panic!("expected validation")
        };
        assert_eq!(fields[0].field, "body");
        assert!(fields[0].message.contains("password"), "{fields:?}");
    }

    #[test]
    fn a_wrongly_typed_field_is_422_naming_its_path() {
        let e = parse_json::<Login>(JSON, br#"{"email":"a","password":"b","devices":[1,"x"]}"#)
            .unwrap_err();
        let AppError::Validation(fields) = e else {
            panic!("expected validation")
        };
        assert_eq!(fields[0].field, "devices[1]");
    }

    #[test]
    fn a_non_object_body_is_422() {
        let e = parse_json::<Login>(JSON, b"[]").unwrap_err();
        assert_eq!(e.code(), "validation_failed");
    }

    #[derive(Debug, Deserialize)]
    struct Seats {
        #[serde(default, deserialize_with = "opt_integral_u32")]
        seats: Option<u32>,
    }

    #[test]
    fn integral_numbers_are_accepted_in_either_notation() {
        for (body, want) in [
            (r#"{"seats":7}"#, Some(7)),
            (r#"{"seats":7.0}"#, Some(7)),
            (r#"{"seats":null}"#, None),
            ("{}", None),
        ] {
            let s: Seats = parse_json(JSON, body.as_bytes()).unwrap();
            assert_eq!(s.seats, want, "{body}");
        }
        for body in [
            r#"{"seats":7.5}"#,
            r#"{"seats":-1}"#,
            r#"{"seats":4294967296}"#,
            r#"{"seats":"7"}"#,
        ] {
            assert_eq!(
                parse_json::<Seats>(JSON, body.as_bytes())
                    .unwrap_err()
                    .status(),
                422,
                "{body}"
            );
        }
    }

    #[derive(Debug, Deserialize)]
    struct Version {
        #[serde(deserialize_with = "integral_i64")]
        v: i64,
    }

    #[test]
    fn integral_i64_accepts_whole_numbers_in_either_notation() {
        for (body, want) in [
            (r#"{"v":-3}"#, -3),
            (r#"{"v":36785397994.0}"#, 36_785_397_994),
        ] {
            assert_eq!(
                parse_json::<Version>(JSON, body.as_bytes()).unwrap().v,
                want
            );
        }
        for body in [r#"{"v":1.5}"#, r#"{"v":1e300}"#, r#"{"v":"1"}"#] {
            assert_eq!(
                parse_json::<Version>(JSON, body.as_bytes())
                    .unwrap_err()
                    .status(),
                422
            );
        }
    }

    #[test]
    fn declared_lengths_over_the_limit_are_413() {
        assert!(check_length(Some(10), 10).is_ok());
        assert!(check_length(None, 10).is_ok());
        assert_eq!(check_length(Some(11), 10).unwrap_err().status(), 413);
    }
}
