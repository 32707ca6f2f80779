//! What Grafana 11/12 and its Infinity datasource 3.x do with the dashboard JSON, step by step,
//! as their current sources do it, so the dashboard test sends exactly the requests they build
//! and reads the answers as they read them. Each rule names the file it comes from:
//!
//! - grafana/grafana-infinity-datasource (3.11): `src/app/variablesQuery/index.ts`,
//!   `src/migrate.ts`, `src/interpolate.ts`, `src/app/queryUtils.ts`,
//!   `pkg/models/query.go`, `pkg/infinity/request.go`, `pkg/infinity/client.go`,
//!   `pkg/infinity/jsonBackend.go`;
//! - grafana/infinity-libs: `lib/go/jsonframer/jsonframer.go` (columns picked with GJSON),
//!   `lib/go/gframer/gframer.go` and `field.go` (column types), `lib/go/utils/time.go`;
//! - grafana/scenes: `packages/scenes/src/variables/variants/query/createQueryVariableRunner.ts`,
//!   `toMetricFindValues.ts`, `variants/MultiValueVariable.ts` (the variable's options and
//!   its default);
//! - grafana/grafana: `public/app/features/annotations/executeAnnotationQuery.ts` (an
//!   annotation's `target` is sent to the datasource as a query, refId `Anno`) and
//!   `standardAnnotationSupport.ts` (frames to annotation events).
//!
//! Anything these files would do that this emulation does not (another parser, GJSON
//! syntax beyond plain dotted keys, a variable it does not know) fails the test with a message
//! instead of being guessed.

#![allow(dead_code)]

use serde_json::{json, Map, Value};

pub const INFINITY: &str = "yesoreyeram-infinity-datasource";

/// The Infinity datasource as provisioned: its base URL (`url:`) and `allowedHosts`.
pub struct InfinitySettings {
    pub url: String,
    pub allowed_hosts: Vec<String>,
}

/// The dashboard's variables as Grafana's template service substitutes them in Infinity's
/// `interpolateQuery` (`src/interpolate.ts`, format `glob`: a single value as it is).
pub struct Variables {
    pub driver: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Variables {
    pub fn replace(&self, text: &str) -> String {
        let mut out = text
            .replace("${__from}", &self.from_ms.to_string())
            .replace("${__to}", &self.to_ms.to_string());
        if let Some(d) = &self.driver {
            out = out.replace("${driver}", d).replace("$driver", d);
        }
        assert!(
            !out.contains('$'),
            "{text:?}: a variable this dashboard does not define (Grafana would send it as is)"
        );
        out
    }
}

/// A variable query as Infinity's `migrateLegacyQuery` (`src/app/variablesQuery/index.ts`)
/// leaves it: a string is a legacy query; an object with `queryType` keeps its
/// `infinityQuery` (defaults from `DefaultInfinityQuery`, `src/constants.ts`); any other
/// object becomes a legacy query with `query: ''`, which `LegacyVariableProvider` resolves
/// to no values at all.
pub fn migrate_variable_query(query: &Value) -> Result<Value, String> {
    match query {
        Value::String(s) => Err(format!(
            "the variable query is the string {s:?}: Infinity runs it as a legacy query \
             (Collection(...), Join(...)), not against the API"
        )),
        Value::Object(q) if q.contains_key("queryType") => {
            match q["queryType"].as_str() {
                Some("infinity") => {}
                other => {
                    return Err(format!(
                        "queryType {other:?}: only \"infinity\" queries the API"
                    ))
                }
            }
            let infinity = q.get("infinityQuery").ok_or(
                "queryType infinity without infinityQuery: 'no infinity variable query found'",
            )?;
            Ok(defaults_deep(infinity, &default_infinity_query()))
        }
        _ => Err(
            "the variable query has no queryType: migrateLegacyQuery turns it into a legacy \
             query with query '' and the variable has no values"
                .into(),
        ),
    }
}

/// `DefaultInfinityQuery` (`src/constants.ts`).
fn default_infinity_query() -> Value {
    json!({
        "refId": "", "type": "json", "source": "url", "format": "table", "url": "",
        "url_options": {"method": "GET", "data": ""}, "root_selector": "", "columns": [],
        "filters": []
    })
}

/// lodash `defaultsDeep(value, defaults)`: keys missing from `value` taken from `defaults`.
fn defaults_deep(value: &Value, defaults: &Value) -> Value {
    match (value, defaults) {
        (Value::Object(v), Value::Object(d)) => {
            let mut out: Map<String, Value> = v.clone();
            for (k, dv) in d {
                match out.get(k) {
                    None => {
                        out.insert(k.clone(), dv.clone());
                    }
                    Some(existing) => {
                        let merged = defaults_deep(existing, dv);
                        out.insert(k.clone(), merged);
                    }
                }
            }
            Value::Object(out)
        }
        _ => value.clone(),
    }
}

/// Infinity's `migrateQuery` → `setDefaultParserToBackend` (`src/migrate.ts`): a query with
/// no parser, no root selector and no columns gets `backend` only when its URL is empty, and
/// `simple` (the frontend parser) otherwise. The dashboard must end on the backend parser,
/// the one emulated here.
pub fn parser_after_migration(query: &Value) -> String {
    if let Some(p) = query["parser"].as_str() {
        return p.to_string();
    }
    let has_root = query["root_selector"]
        .as_str()
        .is_some_and(|s| !s.is_empty());
    let has_columns = query["columns"].as_array().is_some_and(|c| !c.is_empty());
    if has_root || has_columns {
        return "(none: the frontend parser)".into();
    }
    if query["url"].as_str() == Some("") {
        "backend".into()
    } else {
        "simple".into()
    }
}

/// The request Infinity's backend sends for `query` (already interpolated): the URL of
/// `GetQueryURL` (`pkg/infinity/request.go`): the datasource URL is put before the query's
/// unless the query's already starts with it, then the parameters are added with Go's
/// `url.Values` (`Encode`: sorted by key, `QueryEscape`d). The method defaults to GET
/// (`ApplyDefaultsToQuery`, `pkg/models/query.go`).
pub fn request_url(settings: &InfinitySettings, query: &Value) -> String {
    let method = query["url_options"]["method"].as_str().unwrap_or("GET");
    assert!(
        method.is_empty() || method.eq_ignore_ascii_case("GET"),
        "{method}: the dashboard's queries are GETs"
    );
    let url = query["url"].as_str().unwrap_or_default();
    let joined = if url.starts_with(&settings.url) {
        url.to_string()
    } else {
        format!("{}{url}", settings.url)
    };
    assert!(
        !joined.contains('?'),
        "{joined}: put query parameters in url_options.params"
    );
    let mut params: Vec<(String, String)> = query["url_options"]["params"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["key"].as_str().unwrap_or_default().to_string(),
                p["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    // url.Values.Encode sorts by key; values of one key keep their order (a stable sort).
    params.sort_by(|a, b| a.0.cmp(&b.0));
    if params.is_empty() {
        return joined;
    }
    let encoded: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect();
    format!("{joined}?{}", encoded.join("&"))
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `CanAllowURL` (`pkg/infinity/client.go`): with allowed hosts set, the URL must start with
/// one of them and have its host name.
pub fn allowed(settings: &InfinitySettings, url: &str) -> bool {
    let host = |u: &str| {
        let rest = u.split_once("://").map_or(u, |(_, r)| r);
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .to_string()
    };
    settings.allowed_hosts.is_empty()
        || settings
            .allowed_hosts
            .iter()
            .any(|a| url.starts_with(a.as_str()) && host(a) == host(url))
}

/// A frame's column as gframer builds it.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Number(f64),
    /// Epoch milliseconds.
    Time(i64),
    Bool(bool),
}

#[derive(Debug)]
pub struct Field {
    pub name: String,
    pub kind: &'static str,
    pub values: Vec<Cell>,
}

#[derive(Debug)]
pub struct Frame {
    pub fields: Vec<Field>,
}

impl Frame {
    pub fn len(&self) -> usize {
        self.fields.first().map_or(0, |f| f.values.len())
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// GJSON's `Get` for the selectors the dashboard uses: keys joined by dots. Anything with
/// GJSON's other syntax (`#`, `*`, `?`, `|`, `@`, escapes) is refused rather than guessed.
fn gjson_get<'a>(row: &'a Value, selector: &str) -> Option<&'a Value> {
    assert!(
        !selector.is_empty()
            && selector
                .split('.')
                .all(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')),
        "column selector {selector:?}: GJSON syntax beyond dotted keys is not emulated"
    );
    selector
        .split('.')
        .try_fold(row, |v, key| v.as_object().and_then(|o| o.get(key)))
}

/// The backend parser on a JSON answer (`GetJSONBackendResponse`, `pkg/infinity/jsonBackend.go`
/// → `jsonframer.ToFrame` with the GJSON framer): the root selector (empty: the whole answer),
/// then each column's selector read from each row into a field named by the column's `text`
/// (or its selector), typed as gframer's `sliceToFrame` does (`gframer.go`, `field.go`):
/// `number` takes numbers and numeric strings, `timestamp_epoch` milliseconds (numbers or
/// integer strings), `timestamp` strings in one of `GetTimeFromString`'s layouts (RFC 3339
/// first), `string` strings, numbers and booleans; anything else is null. A column whose
/// first non-null value is an object or array becomes that value's JSON text, whatever its type.
pub fn backend_frame(query: &Value, answer: &Value) -> Frame {
    let root = query["root_selector"].as_str().unwrap_or_default();
    assert!(root.is_empty(), "root_selector {root:?} is not emulated");
    let rows: Vec<&Value> = match answer {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![answer],
        other => panic!("the backend parser cannot frame {other}"),
    };
    let columns = query["columns"].as_array().cloned().unwrap_or_default();
    assert!(
        !columns.is_empty(),
        "a query without columns gets every key of the answer, unchecked here: name them"
    );
    let mut fields = Vec::new();
    for c in &columns {
        let selector = c["selector"].as_str().unwrap_or_default();
        let name = c["text"]
            .as_str()
            .filter(|t| !t.is_empty())
            .unwrap_or(selector)
            .to_string();
        let kind = c["type"].as_str().unwrap_or_default();
        let raw: Vec<Option<&Value>> = rows
            .iter()
            .map(|r| gjson_get(r, selector).filter(|v| !v.is_null()))
            .collect();
        let first = raw.iter().flatten().next();
        let (kind, values): (&'static str, Vec<Cell>) =
            if first.is_some_and(|v| v.is_object() || v.is_array()) {
                (
                    "json",
                    raw.iter()
                        .map(|v| v.map_or(Cell::Null, |v| Cell::Text(v.to_string())))
                        .collect(),
                )
            } else {
                match kind {
                    "string" => ("string", raw.iter().map(|v| to_string(*v)).collect()),
                    "number" => ("number", raw.iter().map(|v| to_number(*v)).collect()),
                    "timestamp_epoch" => ("time", raw.iter().map(|v| to_epoch_ms(*v)).collect()),
                    "timestamp" => ("time", raw.iter().map(|v| to_time(*v)).collect()),
                    "boolean" => (
                        "boolean",
                        raw.iter()
                            .map(|v| match v {
                                Some(Value::Bool(b)) => Cell::Bool(*b),
                                Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => {
                                    Cell::Bool(true)
                                }
                                _ => Cell::Null,
                            })
                            .collect(),
                    ),
                    other => panic!("column type {other:?} is not emulated"),
                }
            };
        fields.push(Field { name, kind, values });
    }
    Frame { fields }
}

fn to_string(v: Option<&Value>) -> Cell {
    match v {
        Some(Value::String(s)) => Cell::Text(s.clone()),
        Some(Value::Number(n)) => Cell::Text(n.to_string()),
        Some(Value::Bool(b)) => Cell::Text(b.to_string()),
        _ => Cell::Null,
    }
}

fn to_number(v: Option<&Value>) -> Cell {
    match v {
        Some(Value::Number(n)) => n.as_f64().map_or(Cell::Null, Cell::Number),
        Some(Value::String(s)) => s.parse().map_or(Cell::Null, Cell::Number),
        _ => Cell::Null,
    }
}

fn to_epoch_ms(v: Option<&Value>) -> Cell {
    match v {
        Some(Value::Number(n)) => n.as_f64().map_or(Cell::Null, |f| Cell::Time(f as i64)),
        Some(Value::String(s)) => s.parse().map_or(Cell::Null, Cell::Time),
        _ => Cell::Null,
    }
}

/// `GetTimeFromString`'s first layout, RFC 3339 (Go accepts a fraction of a second after the
/// seconds even where the layout has none). The dashboard's time strings are all RFC 3339;
/// the other layouts (dates without a zone) are not emulated, so such a string is null here.
fn to_time(v: Option<&Value>) -> Cell {
    let Some(Value::String(s)) = v else {
        return Cell::Null;
    };
    parse_rfc3339_ms(s).map_or(Cell::Null, Cell::Time)
}

fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return None;
        }
        ms = format!("{digits:0<3}")[..3].parse::<i64>().ok()?;
        rest = &frac[digits.len()..];
    }
    let offset_min = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().ok()?)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (yy, mm) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi - offset_min) * 60_000 + sec * 1000 + ms)
}

/// The variable's options from the frame its query returned: Infinity's
/// `convertOriginalFieldsToVariableFields` (`src/app/variablesQuery/index.ts`: `__text` /
/// `__value`, else the first field for text, and the second of exactly two, or the first, for
/// value), then scenes' `toMetricFindValues` (a string field is required; `text` and `value`
/// by name).
pub fn variable_options(frame: &Frame) -> Result<Vec<(String, String)>, String> {
    if frame.fields.is_empty() {
        return Err("at least one field expected for variable".into());
    }
    let tf = frame.field("__text");
    let vf = frame.field("__value");
    let text = tf.or(vf).unwrap_or(&frame.fields[0]);
    let value = match (tf, vf) {
        (Some(_), Some(v)) => v,
        (Some(t), None) => t,
        (None, Some(v)) => v,
        (None, None) if frame.fields.len() == 2 => &frame.fields[1],
        (None, None) => &frame.fields[0],
    };
    if text.kind != "string" || value.kind != "string" {
        return Err(format!(
            "the variable's text ({}) and value ({}) must be string fields",
            text.kind, value.kind
        ));
    }
    Ok(text
        .values
        .iter()
        .zip(&value.values)
        .map(|(t, v)| match (t, v) {
            (Cell::Text(t), Cell::Text(v)) => (t.clone(), v.clone()),
            _ => panic!("a null driver in the variable's options"),
        })
        .collect())
}

/// The value a single-value query variable takes once its options are loaded
/// (`MultiValueVariable.getStateUpdateGivenNewOptions`): the saved `current` when it is
/// among the options, else the first option.
pub fn variable_default(variable: &Value, options: &[(String, String)]) -> Option<String> {
    let current = variable["current"]["value"].as_str();
    options
        .iter()
        .find(|(_, v)| Some(v.as_str()) == current)
        .or(options.first())
        .map(|(_, v)| v.clone())
}

/// One annotation event.
#[derive(Debug)]
pub struct Annotation {
    pub time: i64,
    pub time_end: Option<i64>,
    pub title: Option<String>,
    pub text: String,
    pub tags: Vec<String>,
}

/// `getAnnotationsFromData` (`standardAnnotationSupport.ts`), with the default mappings:
/// fields found by lower-cased name (`time`, `timeend`, `title`, `text`, `tags`); `time`
/// falls back to the first time field and `text` to the first string field; without both the
/// answer is no events at all. `tags` strings are split on commas.
pub fn annotations(frame: &Frame) -> Vec<Annotation> {
    let by_name = |n: &str| frame.fields.iter().find(|f| f.name.to_lowercase() == n);
    let time = by_name("time").or_else(|| frame.fields.iter().find(|f| f.kind == "time"));
    let text = by_name("text").or_else(|| frame.fields.iter().find(|f| f.kind == "string"));
    let (Some(time), Some(text)) = (time, text) else {
        return Vec::new();
    };
    let time_end = by_name("timeend");
    let title = by_name("title");
    let tags = by_name("tags");
    (0..frame.len())
        .map(|i| Annotation {
            time: match &time.values[i] {
                Cell::Time(t) => *t,
                other => panic!("annotation {i}: time is {other:?}"),
            },
            time_end: time_end.and_then(|f| match &f.values[i] {
                Cell::Time(t) => Some(*t),
                _ => None,
            }),
            title: title.and_then(|f| match &f.values[i] {
                Cell::Text(t) => Some(t.clone()),
                _ => None,
            }),
            text: match &text.values[i] {
                Cell::Text(t) => t.clone(),
                other => panic!("annotation {i}: text is {other:?}"),
            },
            tags: tags
                .and_then(|f| match &f.values[i] {
                    Cell::Text(t) => Some(t.split(',').map(str::to_string).collect()),
                    _ => None,
                })
                .unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_as_go_does() {
        assert_eq!(
            parse_rfc3339_ms("2023-05-28T13:03:42.424Z"),
            Some(1_685_279_022_424)
        );
        assert_eq!(
            parse_rfc3339_ms("2023-05-28T15:03:42+02:00"),
            Some(1_685_279_022_000)
        );
        assert_eq!(parse_rfc3339_ms("28/05/2023"), None);
    }

    #[test]
    fn urls_are_joined_and_encoded_as_infinity_does() {
        let s = InfinitySettings {
            url: "http://host:5001".into(),
            allowed_hosts: vec![],
        };
        let q = json!({"url": "/api/alerts", "url_options": {"method": "GET", "params": [
            {"key": "type", "value": "a,b"}, {"key": "driver", "value": "VER"}]}});
        assert_eq!(
            request_url(&s, &q),
            "http://host:5001/api/alerts?driver=VER&type=a%2Cb"
        );
        // The old absolute URLs: glued to another datasource URL.
        let old = json!({"url": "http://localhost:5001/api/drivers", "url_options": {}});
        assert_eq!(
            request_url(&s, &old),
            "http://host:5001http://localhost:5001/api/drivers"
        );
    }
}
