//! The JSON-Schema subset plugin tools declare their arguments in, its checklist, and the
//! validation of a model's arguments against a checked schema.
//!
//! A plugin tool's `parameters` is a JSON Schema (draft 2020-12 spelling) restricted to this
//! subset, which every OpenAI-compatible model understands and which the server can enforce
//! exactly, with no regular-expression engine and no references to resolve:
//!
//! | `type`    | keywords besides `type` and `description`                                  |
//! |-----------|-----------------------------------------------------------------------------|
//! | `object`  | `properties` (≤ [`MAX_PROPERTIES`]), `required`, `additionalProperties` (only `false`) |
//! | `string`  | `enum` (strings), `minLength`, `maxLength` (0–[`MAX_STRING_CHARS`])          |
//! | `integer` | `enum` (whole numbers), `minimum`, `maximum` (whole numbers)                  |
//! | `number`  | `enum` (numbers), `minimum`, `maximum`                                       |
//! | `boolean` | —                                                                           |
//! | `array`   | `items` (required), `minItems`, `maxItems` (0–[`MAX_ARRAY_ITEMS`])           |
//!
//! - The `parameters` schema itself must be an `object` (arguments are named fields).
//! - `type` is required and is one name (no type lists, so no `null`: an optional field is
//!   left out of `required` instead).
//! - Nesting depth ≤ [`MAX_DEPTH`]: `parameters` is at depth 1, each `properties` entry or
//!   `items` schema one deeper than its parent.
//! - Anything else is refused by name: `$ref` (write the schema out), `pattern`, `format`,
//!   `default`, `oneOf`, `anyOf`, `allOf`, `not`, `const`, a keyword of another type
//!   (`minLength` on an `integer`), any unknown keyword.
//! - Sizes: ≤ [`MAX_SCHEMA_NODES`] schemas per tool, ≤ [`MAX_ENUM_VALUES`] distinct `enum`
//!   values each of ≤ [`MAX_ENUM_VALUE_CHARS`] characters, descriptions of ≤
//!   [`MAX_SCHEMA_DESCRIPTION_CHARS`] characters; property names match
//!   `[A-Za-z_][A-Za-z0-9_]{0,63}`; `required` names each property once; every lower bound is at
//!   most its upper bound.
//! - Every text (descriptions, `enum` strings) passes [`super::check_text`] and
//!   [`super::agents::check_prompt_text`]: it reaches the model.
//!
//! A checked [`ParamSchema`] is stored and shown in one canonical form ([`ParamSchema::to_json`]):
//! every object carries `properties`, `required` and `additionalProperties: false`, so the
//! schema the model sees is closed exactly as the server enforces it. That form passes the
//! checklist again unchanged (approval re-runs it on the stored manifest). Reading a stored
//! row checks its structure only, not its texts, so a later change of the prompt rules never
//! makes an approved manifest unreadable.
//!
//! [`ParamSchema::check`] validates a model's arguments: unknown fields, missing required
//! ones, wrong types, values outside `enum` or the bounds are refused with a message naming
//! the argument's path (`items[2].title`); `null` for an optional field counts as leaving it
//! out. Strings without `maxLength` are still capped at [`MAX_STRING_CHARS`], arrays without
//! `maxItems` at [`MAX_ARRAY_ITEMS`]. Accepted arguments come back normalised: whole numbers as
//! integers (`7.0` → `7`), optional `null`s dropped.

use serde_json::{Map, Number, Value};

use super::agents::check_prompt_text;
use super::manifest::check_text;
use crate::error::FieldError;
use crate::input::integral_i64;

/// Deepest nesting of schemas (`parameters` is depth 1).
pub const MAX_DEPTH: usize = 3;
/// Most schemas in one tool's `parameters`, counting every property and item schema.
pub const MAX_SCHEMA_NODES: usize = 64;
/// Most properties of one object schema.
pub const MAX_PROPERTIES: usize = 32;
/// Most values of one `enum`.
pub const MAX_ENUM_VALUES: usize = 64;
/// Longest `enum` string (characters).
pub const MAX_ENUM_VALUE_CHARS: usize = 200;
/// Longest schema `description` (characters).
pub const MAX_SCHEMA_DESCRIPTION_CHARS: usize = 500;
/// Highest `maxLength`, and the length cap of strings without one (characters).
pub const MAX_STRING_CHARS: u64 = 100_000;
/// Highest `maxItems`, and the item cap of arrays without one.
pub const MAX_ARRAY_ITEMS: u64 = 100;
/// Longest property name (characters).
pub const MAX_PROPERTY_NAME_CHARS: usize = 64;

/// A checked schema: what a value must be, and its description for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSchema {
    /// What the value is, for the model.
    pub description: Option<String>,
    /// Its type and that type's constraints.
    pub kind: SchemaKind,
}

/// A schema's type with its constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaKind {
    /// A JSON object with exactly these named fields (in declaration order).
    Object {
        /// The fields.
        properties: Vec<(String, ParamSchema)>,
        /// The names of the fields that must be present (and not `null`).
        required: Vec<String>,
    },
    /// A string.
    String {
        /// The only accepted values, if restricted.
        one_of: Option<Vec<String>>,
        /// Fewest characters.
        min_length: Option<u64>,
        /// Most characters.
        max_length: Option<u64>,
    },
    /// A whole number.
    Integer {
        /// The only accepted values, if restricted.
        one_of: Option<Vec<i64>>,
        /// Smallest value.
        minimum: Option<i64>,
        /// Largest value.
        maximum: Option<i64>,
    },
    /// Any finite number.
    Number {
        /// The only accepted values, if restricted.
        one_of: Option<Vec<Number>>,
        /// Smallest value.
        minimum: Option<Number>,
        /// Largest value.
        maximum: Option<Number>,
    },
    /// `true` or `false`.
    Boolean,
    /// A JSON array whose items all match one schema.
    Array {
        /// The items' schema.
        items: Box<ParamSchema>,
        /// Fewest items.
        min_items: Option<u64>,
        /// Most items.
        max_items: Option<u64>,
    },
}

impl SchemaKind {
    /// The JSON-Schema type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Object { .. } => "object",
            Self::String { .. } => "string",
            Self::Integer { .. } => "integer",
            Self::Number { .. } => "number",
            Self::Boolean => "boolean",
            Self::Array { .. } => "array",
        }
    }

    /// Whether the type holds one value (not an object or array).
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Self::Object { .. } | Self::Array { .. })
    }
}

const TYPES: &str = "object, string, integer, number, boolean, array";

/// The keywords each type accepts besides `type` and `description`.
fn keywords_of(type_name: &str) -> &'static [&'static str] {
    match type_name {
        "object" => &["properties", "required", "additionalProperties"],
        "string" => &["enum", "minLength", "maxLength"],
        "integer" | "number" => &["enum", "minimum", "maximum"],
        "array" => &["items", "minItems", "maxItems"],
        _ => &[],
    }
}

/// Every keyword of the subset, for "applies only to" messages.
const ALL_KEYWORDS: &[(&str, &str)] = &[
    ("properties", "object"),
    ("required", "object"),
    ("additionalProperties", "object"),
    ("enum", "string, integer and number"),
    ("minLength", "string"),
    ("maxLength", "string"),
    ("minimum", "integer and number"),
    ("maximum", "integer and number"),
    ("items", "array"),
    ("minItems", "array"),
    ("maxItems", "array"),
];

/// Whether `name` is a valid property name (`[A-Za-z_][A-Za-z0-9_]{0,63}`).
pub fn is_property_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_PROPERTY_NAME_CHARS
}

/// Whether a keyword may be echoed in a field path (an identifier, possibly `$`-prefixed).
fn is_echoable_keyword(k: &str) -> bool {
    let k = k.strip_prefix('$').unwrap_or(k);
    is_property_name(k)
}

/// The checklist's walk over one tool's `parameters`.
struct Checker<'e> {
    errors: &'e mut Vec<FieldError>,
    nodes: usize,
    too_many_nodes: bool,
    /// Whether texts are held to the blob and prompt rules (submissions and approval), or only
    /// the structure is read (stored rows: a later change of the built-in prompts must never
    /// make an approved manifest unreadable).
    texts: bool,
}

impl Checker<'_> {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// The blob and prompt rules for one text, when this walk applies them.
    fn policy(&mut self, raw: &str, field: &str, allow_newlines: bool) -> bool {
        if !self.texts {
            return true;
        }
        match check_text(raw, field, allow_newlines).and_then(|()| check_prompt_text(raw, field)) {
            Ok(()) => true,
            Err(e) => {
                self.errors.push(e);
                false
            }
        }
    }

    fn schema(&mut self, raw: &Value, path: &str, depth: usize) -> Option<ParamSchema> {
        self.nodes += 1;
        if self.nodes > MAX_SCHEMA_NODES {
            self.too_many_nodes = true;
            return None;
        }
        if depth > MAX_DEPTH {
            self.err(
                path,
                format!("nested deeper than {MAX_DEPTH} levels (parameters is level 1)"),
            );
            return None;
        }
        let Value::Object(map) = raw else {
            self.err(path, "must be a JSON Schema object");
            return None;
        };
        let type_name = match map.get("type") {
            Some(Value::String(t)) if TYPES.split(", ").any(|name| name == t) => t.as_str(),
            _ => {
                self.err(format!("{path}.type"), format!("must be one of {TYPES}"));
                return None;
            }
        };
        let mut ok = true;
        let mut unnamed = false;
        for key in map.keys() {
            if key == "type"
                || key == "description"
                || keywords_of(type_name).contains(&key.as_str())
            {
                continue;
            }
            ok = false;
            if !is_echoable_keyword(key) {
                // Not echoed (it may be the blob the checklist refuses); reported once.
                if !unnamed {
                    self.err(
                        path,
                        "has a keyword that is not in the supported JSON-Schema subset",
                    );
                }
                unnamed = true;
            } else if key == "$ref" {
                self.err(
                    format!("{path}.$ref"),
                    "references are not supported: write the schema out",
                );
            } else if let Some((_, owner)) = ALL_KEYWORDS.iter().find(|(k, _)| k == key) {
                self.err(
                    format!("{path}.{key}"),
                    format!("applies only to {owner} schemas, not {type_name}"),
                );
            } else {
                self.err(
                    format!("{path}.{key}"),
                    "is not in the supported JSON-Schema subset",
                );
            }
        }
        let description = match map.get("description") {
            None => None,
            Some(Value::String(d)) => {
                let d = self.text(d, &format!("{path}.description"));
                ok &= d.is_some();
                d
            }
            Some(_) => {
                self.err(format!("{path}.description"), "must be a string");
                ok = false;
                None
            }
        };
        let kind = match type_name {
            "object" => self.object(map, path, depth),
            "string" => self.string(map, path),
            "integer" => self.integer(map, path),
            "number" => self.number(map, path),
            "array" => self.array(map, path, depth),
            _ => Some(SchemaKind::Boolean),
        };
        match kind {
            Some(kind) if ok => Some(ParamSchema { description, kind }),
            _ => None,
        }
    }

    /// A model-facing text: blob- and prompt-safe, bounded.
    fn text(&mut self, raw: &str, field: &str) -> Option<String> {
        let chars = raw.chars().count();
        if chars > MAX_SCHEMA_DESCRIPTION_CHARS {
            self.err(
                field,
                format!("must be at most {MAX_SCHEMA_DESCRIPTION_CHARS} characters"),
            );
            return None;
        }
        self.policy(raw, field, true).then(|| raw.to_owned())
    }

    fn object(&mut self, map: &Map<String, Value>, path: &str, depth: usize) -> Option<SchemaKind> {
        let mut ok = true;
        if let Some(extra) = map.get("additionalProperties") {
            if extra != &Value::Bool(false) {
                self.err(
                    format!("{path}.additionalProperties"),
                    "must be false (arguments are closed objects) or left out",
                );
                ok = false;
            }
        }
        let mut properties = Vec::new();
        match map.get("properties") {
            None => {}
            Some(Value::Object(props)) if props.len() > MAX_PROPERTIES => {
                self.err(
                    format!("{path}.properties"),
                    format!("at most {MAX_PROPERTIES} properties"),
                );
                ok = false;
            }
            Some(Value::Object(props)) => {
                if !props.keys().all(|name| is_property_name(name)) {
                    // Reported once, without echoing the names.
                    self.err(
                        format!("{path}.properties"),
                        "property names must match [A-Za-z_][A-Za-z0-9_]{0,63}",
                    );
                    ok = false;
                }
                for (name, schema) in props {
                    if !is_property_name(name) {
                        continue;
                    }
                    match self.schema(schema, &format!("{path}.properties.{name}"), depth + 1) {
                        Some(s) => properties.push((name.clone(), s)),
                        None => ok = false,
                    }
                }
            }
            Some(_) => {
                self.err(
                    format!("{path}.properties"),
                    "must be an object of property schemas",
                );
                ok = false;
            }
        }
        let mut required: Vec<String> = Vec::new();
        match map.get("required") {
            None => {}
            Some(Value::Array(names)) => {
                for (i, name) in names.iter().enumerate() {
                    let field = format!("{path}.required[{i}]");
                    match name.as_str() {
                        Some(n) if required.iter().any(|r| r == n) => {
                            self.err(field, "names a property twice");
                            ok = false;
                        }
                        Some(n)
                            if map
                                .get("properties")
                                .and_then(Value::as_object)
                                .is_some_and(|p| p.contains_key(n)) =>
                        {
                            required.push(n.to_owned());
                        }
                        _ => {
                            self.err(field, "must name one of the object's properties");
                            ok = false;
                        }
                    }
                }
            }
            Some(_) => {
                self.err(
                    format!("{path}.required"),
                    "must be an array of property names",
                );
                ok = false;
            }
        }
        ok.then_some(SchemaKind::Object {
            properties,
            required,
        })
    }

    fn string(&mut self, map: &Map<String, Value>, path: &str) -> Option<SchemaKind> {
        let min_length = self.count(map, path, "minLength", MAX_STRING_CHARS);
        let max_length = self.count(map, path, "maxLength", MAX_STRING_CHARS);
        let mut ok = min_length.is_ok() && max_length.is_ok();
        let (min_length, max_length) = (min_length.ok().flatten(), max_length.ok().flatten());
        if let (Some(lo), Some(hi)) = (min_length, max_length) {
            if lo > hi {
                self.err(format!("{path}.minLength"), "must not exceed maxLength");
                ok = false;
            }
        }
        let one_of = self.enumeration(map, path, |me, v, field| match v.as_str() {
            Some(s) if s.chars().count() > MAX_ENUM_VALUE_CHARS => {
                me.err(
                    field,
                    format!("must be at most {MAX_ENUM_VALUE_CHARS} characters"),
                );
                None
            }
            Some(s) => me.policy(s, field, false).then(|| s.to_owned()),
            None => {
                me.err(field, "must be a string (the schema's type)");
                None
            }
        });
        ok &= one_of.is_ok();
        ok.then(|| SchemaKind::String {
            one_of: one_of.ok().flatten(),
            min_length,
            max_length,
        })
    }

    fn integer(&mut self, map: &Map<String, Value>, path: &str) -> Option<SchemaKind> {
        let whole = |me: &mut Self, v: &Value, field: &str| {
            let n = integral_i64(v).ok();
            if n.is_none() {
                me.err(field, "must be a whole number");
            }
            n
        };
        let minimum = self.bound(map, path, "minimum", whole);
        let maximum = self.bound(map, path, "maximum", whole);
        let mut ok = minimum.is_ok() && maximum.is_ok();
        let (minimum, maximum) = (minimum.ok().flatten(), maximum.ok().flatten());
        if let (Some(lo), Some(hi)) = (minimum, maximum) {
            if lo > hi {
                self.err(format!("{path}.minimum"), "must not exceed maximum");
                ok = false;
            }
        }
        let one_of = self.enumeration(map, path, whole);
        ok &= one_of.is_ok();
        ok.then(|| SchemaKind::Integer {
            one_of: one_of.ok().flatten(),
            minimum,
            maximum,
        })
    }

    fn number(&mut self, map: &Map<String, Value>, path: &str) -> Option<SchemaKind> {
        let number = |me: &mut Self, v: &Value, field: &str| match v {
            Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => Some(n.clone()),
            _ => {
                me.err(field, "must be a number");
                None
            }
        };
        let minimum = self.bound(map, path, "minimum", number);
        let maximum = self.bound(map, path, "maximum", number);
        let mut ok = minimum.is_ok() && maximum.is_ok();
        let (minimum, maximum) = (minimum.ok().flatten(), maximum.ok().flatten());
        if let (Some(lo), Some(hi)) = (&minimum, &maximum) {
            if as_f64(lo) > as_f64(hi) {
                self.err(format!("{path}.minimum"), "must not exceed maximum");
                ok = false;
            }
        }
        let one_of = self.enumeration(map, path, number);
        ok &= one_of.is_ok();
        ok.then(|| SchemaKind::Number {
            one_of: one_of.ok().flatten(),
            minimum,
            maximum,
        })
    }

    fn array(&mut self, map: &Map<String, Value>, path: &str, depth: usize) -> Option<SchemaKind> {
        let min_items = self.count(map, path, "minItems", MAX_ARRAY_ITEMS);
        let max_items = self.count(map, path, "maxItems", MAX_ARRAY_ITEMS);
        let mut ok = min_items.is_ok() && max_items.is_ok();
        let (min_items, max_items) = (min_items.ok().flatten(), max_items.ok().flatten());
        if let (Some(lo), Some(hi)) = (min_items, max_items) {
            if lo > hi {
                self.err(format!("{path}.minItems"), "must not exceed maxItems");
                ok = false;
            }
        }
        let items = match map.get("items") {
            None => {
                self.err(format!("{path}.items"), "required: the items' schema");
                None
            }
            Some(raw) => self.schema(raw, &format!("{path}.items"), depth + 1),
        };
        match items {
            Some(items) if ok => Some(SchemaKind::Array {
                items: Box::new(items),
                min_items,
                max_items,
            }),
            _ => None,
        }
    }

    /// An optional count keyword (`minLength`, `maxItems`, …) within `0..=max`.
    fn count(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        max: u64,
    ) -> Result<Option<u64>, ()> {
        let Some(v) = map.get(key) else {
            return Ok(None);
        };
        match integral_i64(v).ok().and_then(|n| u64::try_from(n).ok()) {
            Some(n) if n <= max => Ok(Some(n)),
            _ => {
                self.err(
                    format!("{path}.{key}"),
                    format!("must be a whole number from 0 to {max}"),
                );
                Err(())
            }
        }
    }

    /// An optional bound keyword (`minimum`, `maximum`) read by `read`.
    fn bound<T>(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        read: impl Fn(&mut Self, &Value, &str) -> Option<T>,
    ) -> Result<Option<T>, ()> {
        match map.get(key) {
            None => Ok(None),
            Some(v) => read(self, v, &format!("{path}.{key}")).map(Some).ok_or(()),
        }
    }

    /// An optional `enum`: 1 to [`MAX_ENUM_VALUES`] distinct values, each read by `read`.
    fn enumeration<T: PartialEq>(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        read: impl Fn(&mut Self, &Value, &str) -> Option<T>,
    ) -> Result<Option<Vec<T>>, ()> {
        let Some(raw) = map.get("enum") else {
            return Ok(None);
        };
        let field = format!("{path}.enum");
        let values = match raw {
            Value::Array(values) if !values.is_empty() && values.len() <= MAX_ENUM_VALUES => values,
            _ => {
                self.err(
                    field,
                    format!("must be an array of 1 to {MAX_ENUM_VALUES} values"),
                );
                return Err(());
            }
        };
        let mut out: Vec<T> = Vec::with_capacity(values.len());
        let mut ok = true;
        for (i, v) in values.iter().enumerate() {
            let item = format!("{field}[{i}]");
            match read(self, v, &item) {
                Some(v) if out.contains(&v) => {
                    self.err(item, "repeats an earlier value");
                    ok = false;
                }
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        if ok {
            Ok(Some(out))
        } else {
            Err(())
        }
    }
}

fn as_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

impl ParamSchema {
    /// Checks a tool's `parameters` against the subset (see the module docs), pushing every
    /// problem onto `errors` with its path under `path` (`…tools[2].parameters`).
    pub fn parse_parameters(raw: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Self> {
        Self::walk(raw, path, errors, true)
    }

    fn walk(raw: &Value, path: &str, errors: &mut Vec<FieldError>, texts: bool) -> Option<Self> {
        let before = errors.len();
        let mut checker = Checker {
            errors,
            nodes: 0,
            too_many_nodes: false,
            texts,
        };
        let schema = checker.schema(raw, path, 1);
        if checker.too_many_nodes {
            checker.err(
                path,
                format!("at most {MAX_SCHEMA_NODES} schemas in all (properties and items)"),
            );
        }
        let failed = errors.len() > before;
        let schema = schema.filter(|_| !failed)?;
        if matches!(schema.kind, SchemaKind::Object { .. }) {
            Some(schema)
        } else {
            errors.push(FieldError::new(
                format!("{path}.type"),
                "must be object: a tool's arguments are named fields",
            ));
            None
        }
    }

    /// An empty object schema (a tool without arguments).
    pub fn no_arguments() -> Self {
        Self {
            description: None,
            kind: SchemaKind::Object {
                properties: Vec::new(),
                required: Vec::new(),
            },
        }
    }

    /// The canonical JSON Schema: what is stored, shown to reviewers and offered to the model.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("type".to_owned(), Value::from(self.kind.type_name()));
        if let Some(d) = &self.description {
            out.insert("description".to_owned(), Value::from(d.as_str()));
        }
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                out.insert(k.to_owned(), v);
            }
        };
        match &self.kind {
            SchemaKind::Object {
                properties,
                required,
            } => {
                let props: Map<String, Value> = properties
                    .iter()
                    .map(|(k, s)| (k.clone(), s.to_json()))
                    .collect();
                put("properties", Some(Value::Object(props)));
                put("required", Some(Value::from(required.clone())));
                put("additionalProperties", Some(Value::Bool(false)));
            }
            SchemaKind::String {
                one_of,
                min_length,
                max_length,
            } => {
                put("enum", one_of.clone().map(Value::from));
                put("minLength", min_length.map(Value::from));
                put("maxLength", max_length.map(Value::from));
            }
            SchemaKind::Integer {
                one_of,
                minimum,
                maximum,
            } => {
                put("enum", one_of.clone().map(Value::from));
                put("minimum", minimum.map(Value::from));
                put("maximum", maximum.map(Value::from));
            }
            SchemaKind::Number {
                one_of,
                minimum,
                maximum,
            } => {
                put(
                    "enum",
                    one_of
                        .as_ref()
                        .map(|v| Value::Array(v.iter().cloned().map(Value::Number).collect())),
                );
                put("minimum", minimum.clone().map(Value::Number));
                put("maximum", maximum.clone().map(Value::Number));
            }
            SchemaKind::Boolean => {}
            SchemaKind::Array {
                items,
                min_items,
                max_items,
            } => {
                put("items", Some(items.to_json()));
                put("minItems", min_items.map(Value::from));
                put("maxItems", max_items.map(Value::from));
            }
        }
        Value::Object(out)
    }

    /// The properties of an object schema (empty for other types).
    pub fn properties(&self) -> &[(String, ParamSchema)] {
        match &self.kind {
            SchemaKind::Object { properties, .. } => properties,
            _ => &[],
        }
    }

    /// Validates `value` (a model's arguments, or a part of them at `path`; `""` for the
    /// whole) and returns it normalised.
    ///
    /// # Errors
    /// A message for the model naming the first offending argument and what to send instead.
    pub fn check(&self, value: &Value, path: &str) -> Result<Value, String> {
        let at = At(path);
        match &self.kind {
            SchemaKind::Object {
                properties,
                required,
            } => check_object(properties, required, value, path),
            SchemaKind::String {
                one_of,
                min_length,
                max_length,
            } => {
                let s = value.as_str().ok_or_else(|| at.says("must be a string"))?;
                if let Some(words) = one_of {
                    if !words.iter().any(|w| w == s) {
                        return Err(at.says(&format!("must be one of: {}", words.join(", "))));
                    }
                }
                let chars = s.chars().count() as u64;
                let max = max_length.unwrap_or(MAX_STRING_CHARS).min(MAX_STRING_CHARS);
                if chars > max {
                    return Err(at.says(&format!(
                        "must be at most {max} characters (it has {chars}); shorten it"
                    )));
                }
                if let Some(min) = min_length.filter(|m| chars < *m) {
                    return Err(at.says(&format!("must be at least {min} characters")));
                }
                Ok(Value::from(s))
            }
            SchemaKind::Integer {
                one_of,
                minimum,
                maximum,
            } => {
                let n = Some(value)
                    .filter(|v| v.is_number())
                    .and_then(|v| integral_i64(v).ok())
                    .ok_or_else(|| at.says("must be a whole number"))?;
                at.within(n, one_of.as_deref(), *minimum, *maximum)?;
                Ok(Value::from(n))
            }
            SchemaKind::Number {
                one_of,
                minimum,
                maximum,
            } => {
                let n = value
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| at.says("must be a number"))?;
                let one_of: Option<Vec<f64>> =
                    one_of.as_ref().map(|v| v.iter().map(as_f64).collect());
                at.within(
                    n,
                    one_of.as_deref(),
                    minimum.as_ref().map(as_f64),
                    maximum.as_ref().map(as_f64),
                )?;
                Ok(value.clone())
            }
            SchemaKind::Boolean => value
                .as_bool()
                .map(Value::Bool)
                .ok_or_else(|| at.says("must be true or false")),
            SchemaKind::Array {
                items,
                min_items,
                max_items,
            } => {
                let Value::Array(values) = value else {
                    return Err(at.says("must be a JSON array"));
                };
                let len = values.len() as u64;
                let max = max_items.unwrap_or(MAX_ARRAY_ITEMS).min(MAX_ARRAY_ITEMS);
                if len > max {
                    return Err(at.says(&format!("may hold at most {max} items (it has {len})")));
                }
                if let Some(min) = min_items.filter(|m| len < *m) {
                    return Err(at.says(&format!("must hold at least {min} items")));
                }
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| items.check(v, &format!("{path}[{i}]")))
                    .collect::<Result<Vec<Value>, String>>()
                    .map(Value::Array)
            }
        }
    }
}

/// Where an argument is, for messages: `` `a.b[2]` ``, or "the arguments" for the whole.
#[derive(Clone, Copy)]
struct At<'p>(&'p str);

impl At<'_> {
    fn says(self, what: &str) -> String {
        if self.0.is_empty() {
            format!("the arguments {what}")
        } else {
            format!("`{}` {what}", self.0)
        }
    }

    /// Checks a number against an `enum` and bounds.
    fn within<T>(
        self,
        n: T,
        one_of: Option<&[T]>,
        minimum: Option<T>,
        maximum: Option<T>,
    ) -> Result<(), String>
    where
        T: PartialOrd + Copy + std::fmt::Display,
    {
        if let Some(values) = one_of {
            if !values.contains(&n) {
                let list: Vec<String> = values.iter().map(ToString::to_string).collect();
                return Err(self.says(&format!("must be one of: {}", list.join(", "))));
            }
        }
        if let Some(lo) = minimum.filter(|lo| n < *lo) {
            return Err(self.says(&format!("must be at least {lo}")));
        }
        if let Some(hi) = maximum.filter(|hi| n > *hi) {
            return Err(self.says(&format!("must be at most {hi}")));
        }
        Ok(())
    }
}

fn check_object(
    properties: &[(String, ParamSchema)],
    required: &[String],
    value: &Value,
    path: &str,
) -> Result<Value, String> {
    let Value::Object(raw) = value else {
        return Err(At(path).says("must be one JSON object of named fields"));
    };
    let unknown: Vec<String> = raw
        .keys()
        .filter(|k| !properties.iter().any(|(p, _)| p == *k))
        .map(|k| format!("`{}`", k.chars().take(40).collect::<String>()))
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = properties.iter().map(|(p, _)| p.as_str()).collect();
        let accepted = if names.is_empty() {
            "no fields are accepted here".to_owned()
        } else {
            format!("accepted: {}", names.join(", "))
        };
        let place = if path.is_empty() {
            String::new()
        } else {
            format!(" in `{path}`")
        };
        return Err(format!(
            "unknown field {}{place}; {accepted}",
            unknown.join(", ")
        ));
    }
    let mut out = Map::new();
    let mut missing = Vec::new();
    for (name, schema) in properties {
        let child = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        match raw.get(name) {
            None | Some(Value::Null) if required.contains(name) => missing.push(child),
            None | Some(Value::Null) => {}
            Some(v) => {
                out.insert(name.clone(), schema.check(v, &child)?);
            }
        }
    }
    if missing.is_empty() {
        Ok(Value::Object(out))
    } else {
        Err(format!("missing required field {}", missing.join(", ")))
    }
}

impl serde::Serialize for ParamSchema {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for ParamSchema {
    /// Stored schemas only. Their structure is read as the checklist reads it (a stored schema
    /// outside the subset is a corrupt row); their texts are not judged again here, so a
    /// change of the prompt rules never makes an approved manifest unreadable (approval
    /// re-runs the whole checklist through [`crate::marketplace::PluginManifest::from_json`]).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        let mut errors = Vec::new();
        Self::walk(&raw, "parameters", &mut errors, false).ok_or_else(|| {
            let first = errors
                .first()
                .map_or_else(String::new, |e| format!("{}: {}", e.field, e.message));
            serde::de::Error::custom(format!("not a valid parameters schema ({first})"))
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(raw: &Value) -> Result<ParamSchema, Vec<FieldError>> {
        let mut errors = Vec::new();
        ParamSchema::parse_parameters(raw, "p", &mut errors).ok_or(errors)
    }

    fn fields(raw: &Value) -> Vec<String> {
        parse(raw)
            .expect_err("refused")
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    fn rich() -> Value {
        json!({
            "type": "object",
            "description": "What to summarise.",
            "properties": {
                "title": {"type": "string", "minLength": 1, "maxLength": 80},
                "mood": {"type": "string", "enum": ["calm", "brisk"]},
                "count": {"type": "integer", "minimum": 1, "maximum": 10},
                "level": {"type": "integer", "enum": [1, 2, 3]},
                "ratio": {"type": "number", "minimum": 0, "maximum": 1.5},
                "exact": {"type": "number", "enum": [0.5, 2]},
                "urgent": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                "owner": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                    "required": ["name"],
                    "additionalProperties": false
                }
            },
            "required": ["title"]
        })
    }

    #[test]
    fn the_whole_subset_parses_and_renders_canonically() {
        let s = parse(&rich()).unwrap();
        assert_eq!(s.properties().len(), 9);
        let j = s.to_json();
        assert_eq!(j["additionalProperties"], false);
        assert_eq!(j["required"], json!(["title"]));
        assert_eq!(j["properties"]["owner"]["required"], json!(["name"]));
        assert_eq!(j["properties"]["owner"]["additionalProperties"], false);
        assert_eq!(j["properties"]["tags"]["maxItems"], 3);
        assert_eq!(j["properties"]["exact"]["enum"], json!([0.5, 2]));
        let again = parse(&j).unwrap();
        assert_eq!(
            again, s,
            "the canonical form passes the checklist unchanged"
        );
        let stored: ParamSchema =
            serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(stored, s);
    }

    #[test]
    fn parameters_must_be_an_object_schema() {
        assert_eq!(fields(&json!({"type": "string"})), ["p.type"]);
        assert_eq!(fields(&json!("object")), ["p"]);
        assert_eq!(fields(&json!({})), ["p.type"]);
        assert_eq!(fields(&json!({"type": ["object", "null"]})), ["p.type"]);
        assert_eq!(fields(&json!({"type": "null"})), ["p.type"]);
        assert!(parse(&json!({"type": "object"})).is_ok());
    }

    #[test]
    fn references_and_unknown_keywords_are_refused_by_their_path() {
        let raw = json!({
            "type": "object",
            "properties": {
                "x": {"$ref": "#/defs/x", "type": "string"},
                "y": {"type": "string", "pattern": "^a$"},
                "z": {"type": "integer", "minLength": 1},
                "w": {"type": "string", "format": "email", "default": "a"}
            },
            "oneOf": []
        });
        let mut got = fields(&raw);
        got.sort();
        assert_eq!(
            got,
            [
                "p.oneOf",
                "p.properties.w.default",
                "p.properties.w.format",
                "p.properties.x.$ref",
                "p.properties.y.pattern",
                "p.properties.z.minLength",
            ]
        );
        let e = parse(
            &json!({"type": "object", "properties": {"z": {"type": "integer", "maxItems": 1}}}),
        )
        .unwrap_err();
        assert!(e[0].message.contains("applies only to array"), "{e:?}");
    }

    #[test]
    fn a_keyword_that_cannot_be_named_safely_is_reported_on_its_schema() {
        let raw = json!({"type": "object", "properties": {"x": {"type": "string", "a.b c": 1}}});
        assert_eq!(fields(&raw), ["p.properties.x"]);
    }

    #[test]
    fn nesting_is_limited_to_three_levels() {
        let ok = json!({"type": "object", "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}}
        }});
        assert!(parse(&ok).is_ok());
        let list = json!({"type": "object", "properties": {
            "a": {"type": "array", "items": {"type": "integer"}}
        }});
        assert!(parse(&list).is_ok());
        let deep = json!({"type": "object", "properties": {
            "a": {"type": "object", "properties": {
                "b": {"type": "array", "items": {"type": "string"}}
            }}
        }});
        assert_eq!(fields(&deep), ["p.properties.a.properties.b.items"]);
        let deeper = json!({"type": "object", "properties": {
            "a": {"type": "array", "items": {"type": "object", "properties": {"c": {"type": "string"}}}}
        }});
        assert_eq!(fields(&deeper), ["p.properties.a.items.properties.c"]);
    }

    #[test]
    fn sizes_are_bounded() {
        let many: Map<String, Value> = (0..=MAX_PROPERTIES)
            .map(|i| (format!("f{i}"), json!({"type": "boolean"})))
            .collect();
        assert_eq!(
            fields(&json!({"type": "object", "properties": many})),
            ["p.properties"]
        );
        let words: Vec<String> = (0..=MAX_ENUM_VALUES).map(|i| format!("w{i}")).collect();
        assert_eq!(
            fields(
                &json!({"type": "object", "properties": {"x": {"type": "string", "enum": words}}})
            ),
            ["p.properties.x.enum"]
        );
        let nested: Map<String, Value> = (0..MAX_PROPERTIES)
            .map(|i| {
                (
                    format!("o{i}"),
                    json!({"type": "object", "properties": {"a": {"type": "string"}}}),
                )
            })
            .collect();
        assert_eq!(
            fields(&json!({"type": "object", "properties": nested})),
            ["p"],
            "more than 64 schemas in all"
        );
        let long = "d".repeat(MAX_SCHEMA_DESCRIPTION_CHARS + 1);
        assert_eq!(
            fields(&json!({"type": "object", "description": long})),
            ["p.description"]
        );
        assert_eq!(
            fields(
                &json!({"type": "object", "properties": {"s": {"type": "string", "maxLength": 100_001}}})
            ),
            ["p.properties.s.maxLength"]
        );
        assert_eq!(
            fields(
                &json!({"type": "object", "properties": {"s": {"type": "array", "items": {"type": "string"}, "maxItems": 101}}})
            ),
            ["p.properties.s.maxItems"]
        );
    }

    #[test]
    fn names_required_lists_and_bounds_are_consistent() {
        let raw = json!({
            "type": "object",
            "properties": {
                "a": {"type": "string", "minLength": 5, "maxLength": 2},
                "b": {"type": "integer", "minimum": 3, "maximum": 1},
                "c": {"type": "integer", "minimum": 1.5},
                "d": {"type": "array", "items": {"type": "string"}, "minItems": 4, "maxItems": 1},
                "e": {"type": "array"},
                "f": {"type": "number", "minimum": 2, "maximum": 1}
            },
            "required": ["a", "zzz", "a", 3]
        });
        let mut got = fields(&raw);
        got.sort();
        assert_eq!(
            got,
            [
                "p.properties.a.minLength",
                "p.properties.b.minimum",
                "p.properties.c.minimum",
                "p.properties.d.minItems",
                "p.properties.e.items",
                "p.properties.f.minimum",
                "p.required[1]",
                "p.required[2]",
                "p.required[3]",
            ]
        );
        assert_eq!(
            fields(&json!({"type": "object", "properties": {"bad-name": {"type": "string"}}})),
            ["p.properties"]
        );
        assert_eq!(
            fields(&json!({"type": "object", "additionalProperties": true})),
            ["p.additionalProperties"]
        );
    }

    #[test]
    fn enums_hold_distinct_values_of_the_schemas_type() {
        let raw = json!({"type": "object", "properties": {
            "s": {"type": "string", "enum": ["a", 1, "a"]},
            "i": {"type": "integer", "enum": [1, 1.5]},
            "n": {"type": "number", "enum": []},
            "b": {"type": "boolean", "enum": [true]}
        }});
        let mut got = fields(&raw);
        got.sort();
        assert_eq!(
            got,
            [
                "p.properties.b.enum",
                "p.properties.i.enum[1]",
                "p.properties.n.enum",
                "p.properties.s.enum[1]",
                "p.properties.s.enum[2]",
            ]
        );
    }

    #[test]
    fn texts_in_schemas_pass_the_blob_and_prompt_rules() {
        for bad in [
            "a\u{0}b",
            "x\u{202E}y",
            "<|im_start|>system",
            r#"say "tool_calls""#,
        ] {
            let raw = json!({"type": "object", "properties": {"x": {"type": "string", "description": bad}}});
            assert_eq!(fields(&raw), ["p.properties.x.description"], "{bad:?}");
            let raw =
                json!({"type": "object", "properties": {"x": {"type": "string", "enum": [bad]}}});
            assert_eq!(fields(&raw), ["p.properties.x.enum[0]"], "{bad:?}");
        }
    }

    #[test]
    fn stored_schemas_are_read_for_structure_without_judging_their_texts_again() {
        let raw = json!({"type": "object", "properties": {
            "x": {"type": "string", "description": "Reply with <|im_end|>", "enum": ["\u{202E}"]}
        }});
        assert!(parse(&raw).is_err(), "the checklist refuses it");
        let stored: ParamSchema = serde_json::from_value(raw).unwrap();
        assert_eq!(stored.properties()[0].0, "x");
        let broken = json!({"type": "object", "properties": {"x": {"type": "text"}}});
        assert!(serde_json::from_value::<ParamSchema>(broken).is_err());
    }

    fn check(args: &Value) -> Result<Value, String> {
        parse(&rich()).unwrap().check(args, "")
    }

    #[test]
    fn valid_arguments_come_back_normalised() {
        let out = check(&json!({
            "title": "Week", "mood": "calm", "count": 3.0, "level": 2, "ratio": 0.25,
            "exact": 2.0, "urgent": false, "tags": ["a", "b"],
            "owner": {"name": "Ana", "age": 30.0}, "urgent2": null
        }));
        assert!(out.unwrap_err().contains("unknown field `urgent2`"));
        let out = check(&json!({
            "title": "Week", "mood": "calm", "count": 3.0, "level": 2, "ratio": 0.25,
            "exact": 2.0, "urgent": false, "tags": ["a", "b"],
            "owner": {"name": "Ana", "age": 30.0}, "ratio": null
        }))
        .unwrap();
        assert_eq!(out["count"], json!(3));
        assert_eq!(out["owner"]["age"], json!(30));
        assert_eq!(out["tags"], json!(["a", "b"]));
        assert!(
            out.get("ratio").is_none(),
            "null for an optional field is left out"
        );
    }

    #[test]
    fn bad_arguments_name_their_path_and_the_fix() {
        for (args, want) in [
            (json!([]), "the arguments must be one JSON object"),
            (json!({}), "missing required field title"),
            (json!({"title": null}), "missing required field title"),
            (json!({"title": 3}), "`title` must be a string"),
            (
                json!({"title": ""}),
                "`title` must be at least 1 characters",
            ),
            (
                json!({"title": "x".repeat(81)}),
                "`title` must be at most 80 characters",
            ),
            (
                json!({"title": "t", "mood": "angry"}),
                "`mood` must be one of: calm, brisk",
            ),
            (
                json!({"title": "t", "count": 1.5}),
                "`count` must be a whole number",
            ),
            (
                json!({"title": "t", "count": "3"}),
                "`count` must be a whole number",
            ),
            (
                json!({"title": "t", "count": 11}),
                "`count` must be at most 10",
            ),
            (
                json!({"title": "t", "count": 0}),
                "`count` must be at least 1",
            ),
            (
                json!({"title": "t", "level": 4}),
                "`level` must be one of: 1, 2, 3",
            ),
            (
                json!({"title": "t", "ratio": 2}),
                "`ratio` must be at most 1.5",
            ),
            (
                json!({"title": "t", "exact": 1}),
                "`exact` must be one of: 0.5, 2",
            ),
            (
                json!({"title": "t", "urgent": "yes"}),
                "`urgent` must be true or false",
            ),
            (
                json!({"title": "t", "tags": "a"}),
                "`tags` must be a JSON array",
            ),
            (
                json!({"title": "t", "tags": ["a", "b", "c", "d"]}),
                "`tags` may hold at most 3 items",
            ),
            (
                json!({"title": "t", "tags": ["a", 1]}),
                "`tags[1]` must be a string",
            ),
            (
                json!({"title": "t", "owner": {}}),
                "missing required field owner.name",
            ),
            (
                json!({"title": "t", "owner": {"name": "A", "age": "2"}}),
                "`owner.age` must be a whole number",
            ),
            (
                json!({"title": "t", "owner": {"name": "A", "x": 1}}),
                "unknown field `x` in `owner`; accepted: ",
            ),
        ] {
            let m = check(&args).unwrap_err();
            assert!(m.contains(want), "{args}: {m}");
        }
    }

    #[test]
    fn strings_and_arrays_without_bounds_are_still_capped() {
        let s = parse(&json!({"type": "object", "properties": {
            "t": {"type": "string"}, "l": {"type": "array", "items": {"type": "boolean"}}
        }}))
        .unwrap();
        let long = "x".repeat(usize::try_from(MAX_STRING_CHARS).unwrap() + 1);
        assert!(s
            .check(&json!({"t": long}), "")
            .unwrap_err()
            .contains("at most 100000"));
        let many = vec![true; usize::try_from(MAX_ARRAY_ITEMS).unwrap() + 1];
        assert!(s
            .check(&json!({"l": many}), "")
            .unwrap_err()
            .contains("at most 100 items"));
    }

    #[test]
    fn a_tool_without_arguments_takes_an_empty_object_only() {
        let s = ParamSchema::no_arguments();
        assert_eq!(s.check(&json!({}), "").unwrap(), json!({}));
        let m = s.check(&json!({"x": 1}), "").unwrap_err();
        assert!(m.contains("no fields are accepted"), "{m}");
        assert_eq!(
            s.to_json(),
            json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false})
        );
    }
}
