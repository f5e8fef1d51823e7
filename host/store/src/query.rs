//! Catalog search as data ([`Rule`]), and its translation to SQL for each backend. Filters run in
//! the database: JSON functions on SQLite, jsonb operators on Postgres. Property names and values
//! are always bound as parameters, never spliced into the SQL text.

use serde_json::Value;

/// A search: a tree of rules, optionally limited to some blueprints.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The root rule (usually a group).
    pub rule: Rule,
    /// Only entities of these blueprints (`None`: all).
    pub blueprints: Option<Vec<String>>,
    /// The order of the results.
    pub order: Order,
}

/// The order of a search's results: by blueprint, then `key`, then identifier (so every order is
/// total and a cursor is one entity). Each key has an index in both backends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Order {
    /// What to sort by.
    pub key: SortKey,
    /// Largest first.
    pub descending: bool,
}

/// What a search sorts by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// `$identifier` (the default).
    #[default]
    Identifier,
    /// `$title` (no title sorts as the empty text).
    Title,
    /// `$updatedAt`.
    UpdatedAt,
}

impl SortKey {
    /// The columns the order and its cursor compare, in order, for table alias `t` (each as
    /// its index has it).
    pub(crate) fn columns(self, t: &str) -> Vec<String> {
        let key = match self {
            Self::Identifier => None,
            Self::Title => Some(format!("COALESCE({t}.title, '')")),
            Self::UpdatedAt => Some(format!("{t}.updated_at")),
        };
        let mut columns = vec![format!("{t}.blueprint")];
        columns.extend(key);
        columns.push(format!("{t}.identifier"));
        columns
    }
}

/// How a group combines its rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combinator {
    /// Every rule matches.
    And,
    /// At least one rule matches.
    Or,
}

/// One node of a search.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// Nested rules.
    Group {
        /// And/or.
        combinator: Combinator,
        /// The rules.
        rules: Vec<Rule>,
    },
    /// A field compared with a value. Dates on `$createdAt`/`$updatedAt` are milliseconds since
    /// the epoch; `Between` takes `[from, to]`; `In`/`NotIn` take a list.
    Compare {
        /// What is compared.
        field: Field,
        /// How.
        op: Op,
        /// With what.
        value: Value,
    },
    /// Entities related to one entity.
    RelatedTo {
        /// The entity's blueprint.
        blueprint: String,
        /// The entity's identifier.
        identifier: String,
        /// Which side of the relation.
        direction: Direction,
    },
}

/// What a rule looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// `$identifier`.
    Identifier,
    /// `$title`.
    Title,
    /// `$team` (a list).
    Team,
    /// `$blueprint`.
    Blueprint,
    /// `$createdAt` (ms).
    CreatedAt,
    /// `$updatedAt` (ms).
    UpdatedAt,
    /// A property by name.
    Property(String),
}

/// Comparison operators, as Port names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `contains`: substring of a string, or element of a list.
    Contains,
    /// `beginsWith`
    BeginsWith,
    /// `endsWith`
    EndsWith,
    /// `in`
    In,
    /// `notIn`
    NotIn,
    /// `isEmpty`: missing, null, `""`, `[]` or `{}`.
    IsEmpty,
    /// `isNotEmpty`
    IsNotEmpty,
    /// `between` `[from, to]`, inclusive.
    Between,
}

/// `relatedTo` direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Entities the given entity relates to (its dependencies).
    Upstream,
    /// Entities that relate to the given entity (its dependents).
    Downstream,
}

/// A bound parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    /// Text.
    Text(String),
    /// Integer.
    Int(i64),
    /// Floating point.
    Real(f64),
    /// JSON (jsonb on Postgres, text on SQLite).
    Json(Value),
}

/// The SQL dialect to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite with its JSON functions.
    Sqlite,
    /// Postgres with jsonb.
    Postgres,
}

/// A `WHERE` condition over the `entities e` table and its parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sql {
    /// The condition.
    pub text: String,
    /// Its parameters, in order.
    pub params: Vec<Param>,
}

/// Why a rule cannot be turned into SQL (the catalog checks queries first, so this is rare).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

struct Builder {
    dialect: Dialect,
    params: Vec<Param>,
}

impl Builder {
    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }
}

/// Compiles a query to a condition on `entities e`, with the parameters numbered from 1.
pub fn compile(query: &Query, dialect: Dialect) -> Result<Sql, QueryError> {
    let mut b = Builder {
        dialect,
        params: Vec::new(),
    };
    let mut text = rule(&query.rule, &mut b)?;
    if let Some(blueprints) = &query.blueprints {
        let list: Vec<String> = blueprints
            .iter()
            .map(|bp| b.bind(Param::Text(bp.clone())))
            .collect();
        let restrict = if list.is_empty() {
            "1=0".to_owned()
        } else {
            format!("e.blueprint IN ({})", list.join(", "))
        };
        text = format!("({text}) AND {restrict}");
    }
    Ok(Sql {
        text,
        params: b.params,
    })
}

fn rule(node: &Rule, b: &mut Builder) -> Result<String, QueryError> {
    match node {
        Rule::Group { combinator, rules } => {
            if rules.is_empty() {
                return Ok(match combinator {
                    Combinator::And => "1=1".into(),
                    Combinator::Or => "1=0".into(),
                });
            }
            let joiner = match combinator {
                Combinator::And => " AND ",
                Combinator::Or => " OR ",
            };
            let parts = rules
                .iter()
                .map(|r| rule(r, b))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(format!("({})", parts.join(joiner)))
        }
        Rule::RelatedTo {
            blueprint,
            identifier,
            direction,
        } => {
            let bp = b.bind(Param::Text(blueprint.clone()));
            let id = b.bind(Param::Text(identifier.clone()));
            // `IN (subquery)` lets the database read the few edges of the given entity once,
            // instead of probing the edge index for every candidate entity.
            Ok(match direction {
                Direction::Downstream => format!(
                    "(e.blueprint, e.identifier) IN (SELECT r.blueprint, r.identifier \
                     FROM entity_relations r WHERE r.target_blueprint = {bp} \
                     AND r.target_identifier = {id})"
                ),
                Direction::Upstream => format!(
                    "(e.blueprint, e.identifier) IN (SELECT r.target_blueprint, r.target_identifier \
                     FROM entity_relations r WHERE r.blueprint = {bp} AND r.identifier = {id})"
                ),
            })
        }
        Rule::Compare { field, op, value } => compare(field, *op, value, b),
    }
}

/// Negation that treats "unknown" (NULL: a missing property) as not matching the positive rule.
fn not(b: &Builder, condition: &str) -> String {
    match b.dialect {
        Dialect::Sqlite => format!("NOT coalesce({condition}, 0)"),
        Dialect::Postgres => format!("NOT coalesce({condition}, false)"),
    }
}

fn list(value: &Value) -> Result<&Vec<Value>, QueryError> {
    value
        .as_array()
        .ok_or_else(|| QueryError("this operator takes a list of values".into()))
}

fn compare(field: &Field, op: Op, value: &Value, b: &mut Builder) -> Result<String, QueryError> {
    // Operators defined in terms of others, whatever the field.
    match op {
        Op::Ne => {
            let eq = compare(field, Op::Eq, value, b)?;
            return Ok(not(b, &eq));
        }
        Op::In => {
            let values = list(value)?;
            if values.is_empty() {
                return Ok("1=0".into());
            }
            let parts = values
                .iter()
                .map(|v| compare(field, Op::Eq, v, b))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(format!("({})", parts.join(" OR ")));
        }
        Op::NotIn => {
            let any = compare(field, Op::In, value, b)?;
            return Ok(not(b, &any));
        }
        Op::IsNotEmpty => {
            let empty = compare(field, Op::IsEmpty, value, b)?;
            return Ok(not(b, &empty));
        }
        Op::Between => {
            let bounds = list(value)?;
            let [from, to] = bounds.as_slice() else {
                return Err(QueryError("between takes [from, to]".into()));
            };
            // One jsonpath for both bounds, so the planner estimates the range as a whole.
            if let (Dialect::Postgres, Field::Property(name)) = (b.dialect, field)
                && let (Some(from), Some(to)) = (jsonpath_scalar(from), jsonpath_scalar(to))
            {
                let key = jsonpath_key(name);
                let path = format!("strict {key} >= {from} && {key} <= {to}");
                return Ok(jsonpath_match(b, path));
            }
            let lower = compare(field, Op::Ge, from, b)?;
            let upper = compare(field, Op::Le, to, b)?;
            return Ok(format!("({lower} AND {upper})"));
        }
        _ => {}
    }
    match field {
        Field::Identifier => Ok(text_column("e.identifier", op, value, b)),
        Field::Blueprint => Ok(text_column("e.blueprint", op, value, b)),
        Field::Title => Ok(text_column("e.title", op, value, b)),
        Field::CreatedAt => int_column("e.created_at", op, value, b),
        Field::UpdatedAt => int_column("e.updated_at", op, value, b),
        Field::Team => team(op, value, b),
        Field::Property(name) => match b.dialect {
            Dialect::Sqlite => sqlite_property(name, op, value, b),
            Dialect::Postgres => postgres_property(name, op, value, b),
        },
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn sql_op(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
        _ => "=",
    }
}

fn text_column(column: &str, op: Op, value: &Value, b: &mut Builder) -> String {
    match op {
        Op::IsEmpty => format!("({column} IS NULL OR {column} = '')"),
        Op::Contains | Op::BeginsWith | Op::EndsWith => text_match(column, op, &text_of(value), b),
        _ => {
            let p = b.bind(Param::Text(text_of(value)));
            format!("{column} {} {p}", sql_op(op))
        }
    }
}

/// Substring, prefix and suffix tests on a text expression.
fn text_match(expr: &str, op: Op, needle: &str, b: &mut Builder) -> String {
    let p = b.bind(Param::Text(needle.to_owned()));
    match (b.dialect, op) {
        (Dialect::Sqlite, Op::Contains) => format!("instr({expr}, {p}) > 0"),
        (Dialect::Sqlite, Op::BeginsWith) => format!("substr({expr}, 1, length({p})) = {p}"),
        (Dialect::Sqlite, _) => {
            format!("(length({p}) = 0 OR substr({expr}, -length({p})) = {p})")
        }
        (Dialect::Postgres, Op::Contains) => format!("strpos({expr}, {p}) > 0"),
        (Dialect::Postgres, Op::BeginsWith) => format!("starts_with({expr}, {p})"),
        (Dialect::Postgres, _) => {
            format!("(length({p}::text) = 0 OR right({expr}, length({p}::text)) = {p})")
        }
    }
}

fn int_column(column: &str, op: Op, value: &Value, b: &mut Builder) -> Result<String, QueryError> {
    let ms = value
        .as_i64()
        .ok_or_else(|| QueryError("dates must be given as date-time strings".into()))?;
    match op {
        Op::Eq | Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            let p = b.bind(Param::Int(ms));
            Ok(format!("{column} {} {p}", sql_op(op)))
        }
        _ => Err(QueryError(
            "dates support =, !=, >, >=, <, <=, in, notIn and between".into(),
        )),
    }
}

fn team(op: Op, value: &Value, b: &mut Builder) -> Result<String, QueryError> {
    match (b.dialect, op) {
        (_, Op::Eq | Op::Contains) => {
            let p = b.bind(Param::Text(text_of(value)));
            Ok(match b.dialect {
                Dialect::Sqlite => {
                    format!("EXISTS (SELECT 1 FROM json_each(e.team) t WHERE t.value = {p})")
                }
                Dialect::Postgres => format!("e.team @> jsonb_build_array({p}::text)"),
            })
        }
        (Dialect::Sqlite, Op::IsEmpty) => Ok("json_array_length(e.team) = 0".into()),
        (Dialect::Postgres, Op::IsEmpty) => Ok("jsonb_array_length(e.team) = 0".into()),
        _ => Err(QueryError(
            "$team supports =, !=, contains, in, notIn, isEmpty and isNotEmpty".into(),
        )),
    }
}

fn sqlite_property(
    name: &str,
    op: Op,
    value: &Value,
    b: &mut Builder,
) -> Result<String, QueryError> {
    let path = b.bind(Param::Text(format!("$.\"{name}\"")));
    let val = format!("json_extract(e.properties, {path})");
    let ty = format!("json_type(e.properties, {path})");
    Ok(match op {
        Op::IsEmpty => format!(
            "coalesce({ty} = 'null' OR ({ty} = 'text' AND {val} = '') \
             OR ({ty} = 'array' AND json_array_length(e.properties, {path}) = 0) \
             OR ({ty} = 'object' AND {val} = '{{}}'), 1)"
        ),
        Op::Contains => {
            let p = b.bind(sqlite_scalar(value));
            let needle = b.bind(Param::Text(text_of(value)));
            format!(
                "CASE {ty} WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(e.properties, {path}) j \
                 WHERE j.value = {p}) WHEN 'text' THEN instr({val}, {needle}) > 0 ELSE 0 END"
            )
        }
        Op::BeginsWith | Op::EndsWith => {
            let test = text_match(&val, op, &text_of(value), b);
            format!("({ty} = 'text' AND {test})")
        }
        Op::Eq if value.is_null() => format!("coalesce({ty} = 'null', 1)"),
        Op::Eq | Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            let guard = match value {
                Value::String(_) => "IN ('text')",
                Value::Number(_) => "IN ('integer', 'real')",
                Value::Bool(_) => "IN ('true', 'false')",
                Value::Array(_) => "IN ('array')",
                Value::Object(_) => "IN ('object')",
                Value::Null => "IN ('null')",
            };
            let operand = match value {
                Value::Array(_) | Value::Object(_) => {
                    let p = b.bind(Param::Text(value.to_string()));
                    format!("json({p})")
                }
                scalar => b.bind(sqlite_scalar(scalar)),
            };
            format!("({ty} {guard} AND {val} {} {operand})", sql_op(op))
        }
        _ => unreachable!("handled by compare"),
    })
}

/// A JSON scalar as SQLite's json_extract returns it (booleans are 0/1).
fn sqlite_scalar(value: &Value) -> Param {
    match value {
        Value::String(s) => Param::Text(s.clone()),
        Value::Bool(v) => Param::Int(i64::from(*v)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Param::Int(i),
            None => Param::Real(n.as_f64().unwrap_or(0.0)),
        },
        other => Param::Text(other.to_string()),
    }
}

fn postgres_property(
    name: &str,
    op: Op,
    value: &Value,
    b: &mut Builder,
) -> Result<String, QueryError> {
    // Scalar comparisons are single operators on the whole `properties` document: the planner
    // estimates `@>` and `@@` by trying them on the column's statistics (a sample of documents),
    // so it can tell a value that most entities have from a rare one and walk the order's index
    // or use the GIN index accordingly. Spelled as `properties -> key` comparisons, every
    // filter was guessed at 0.5% or less and planned as a scan and sort of the whole table.
    if let Some(literal) = jsonpath_scalar(value) {
        match op {
            // For a string, number or boolean, containment is equality: a nested array does
            // not contain a scalar, and numbers compare by value as `=` does. Arrays and
            // objects would also match a larger value, so they keep `=`.
            Op::Eq => {
                let mut document = serde_json::Map::new();
                document.insert(name.to_owned(), value.clone());
                let p = b.bind(Param::Json(Value::Object(document)));
                return Ok(format!("e.properties @> {p}::jsonb"));
            }
            // A strict jsonpath comparison is false or unknown for a missing property, an array
            // or another type, compares numbers by value, and strings by code point (SQLite's
            // byte order, in UTF-8), whatever the database's collation.
            Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                let path = format!(
                    "strict {} {} {literal}",
                    jsonpath_key(name),
                    jsonpath_op(op)
                );
                return Ok(jsonpath_match(b, path));
            }
            _ => {}
        }
    }
    let key = b.bind(Param::Text(name.to_owned()));
    let val = format!("(e.properties -> {key})");
    let text = format!("(e.properties ->> {key})");
    Ok(match op {
        Op::IsEmpty => format!(
            "coalesce({val}, 'null'::jsonb) IN ('null'::jsonb, '\"\"'::jsonb, '[]'::jsonb, '{{}}'::jsonb)"
        ),
        // An element equal to the value (not `@>`, which would also find `{"a": 1}` in
        // `[{"a": 1, "b": 2}]`), or a substring.
        Op::Contains => {
            let element = b.bind(Param::Json(value.clone()));
            let needle = b.bind(Param::Text(text_of(value)));
            format!(
                "CASE jsonb_typeof({val}) WHEN 'array' THEN EXISTS (SELECT 1 FROM \
                 jsonb_array_elements({val}) AS x(element) WHERE x.element = {element}::jsonb) \
                 WHEN 'string' THEN strpos({text}, {needle}) > 0 ELSE false END"
            )
        }
        Op::BeginsWith | Op::EndsWith => {
            let test = text_match(&text, op, &text_of(value), b);
            format!("(jsonb_typeof({val}) = 'string' AND {test})")
        }
        Op::Eq if value.is_null() => format!("coalesce({val} = 'null'::jsonb, true)"),
        Op::Eq => {
            let p = b.bind(Param::Json(value.clone()));
            format!("{val} = {p}::jsonb")
        }
        // Nothing is ordered against null.
        Op::Gt | Op::Ge | Op::Lt | Op::Le if value.is_null() => "false".into(),
        // Arrays and objects, in jsonb's order, against values of their own type only.
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            let p = b.bind(Param::Json(value.clone()));
            format!(
                "(jsonb_typeof({val}) = jsonb_typeof({p}::jsonb) AND {val} {} {p}::jsonb)",
                sql_op(op)
            )
        }
        _ => unreachable!("handled by compare"),
    })
}

/// A string, number or boolean as a jsonpath literal (JSON's spelling is jsonpath's); `None` for
/// null, arrays and objects, which jsonpath does not order.
fn jsonpath_scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// `$."name"`: a top-level property, quoted as a JSON string.
fn jsonpath_key(name: &str) -> String {
    format!("$.{}", Value::String(name.to_owned()))
}

fn jsonpath_op(op: Op) -> &'static str {
    match op {
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
        _ => "==",
    }
}

/// `properties @@ path`, the path bound as text (it holds the property's name and the value).
fn jsonpath_match(b: &mut Builder, path: String) -> String {
    let p = b.bind(Param::Text(path));
    format!("e.properties @@ {p}::jsonpath")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prop(name: &str) -> Field {
        Field::Property(name.into())
    }

    fn rule(field: Field, op: Op, value: Value) -> Query {
        Query {
            order: Order::default(),
            rule: Rule::Compare { field, op, value },
            blueprints: Some(vec!["service".into()]),
        }
    }

    #[test]
    fn names_and_values_are_bound_not_spliced() {
        let q = rule(
            Field::Property("x') OR 1=1 --".into()),
            Op::Eq,
            json!("a' OR '1'='1"),
        );
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let sql = compile(&q, dialect).unwrap();
            assert!(!sql.text.contains("OR 1=1"), "{}", sql.text);
            assert!(!sql.text.contains("'1'='1"), "{}", sql.text);
        }
    }

    #[test]
    fn postgres_equality_on_a_scalar_is_containment_and_on_a_list_is_equality() {
        let pg = compile(
            &rule(prop("language"), Op::Eq, json!("rust")),
            Dialect::Postgres,
        );
        let pg = pg.unwrap();
        assert_eq!(
            pg.text,
            "(e.properties @> $1::jsonb) AND e.blueprint IN ($2)"
        );
        assert_eq!(pg.params[0], Param::Json(json!({ "language": "rust" })));
        // `{"tags": ["a", "b"]} @> {"tags": ["a"]}` holds, so a list keeps `=`.
        let pg = compile(&rule(prop("tags"), Op::Eq, json!(["a"])), Dialect::Postgres);
        assert_eq!(
            pg.unwrap().text,
            "((e.properties -> $1) = $2::jsonb) AND e.blueprint IN ($3)"
        );
    }

    #[test]
    fn postgres_orders_and_ranges_are_one_strict_jsonpath_with_the_name_quoted() {
        let q = rule(prop("launched \"at\""), Op::Between, json!(["2024", 5]));
        let pg = compile(&q, Dialect::Postgres).unwrap();
        assert_eq!(
            pg.text,
            "(e.properties @@ $1::jsonpath) AND e.blueprint IN ($2)"
        );
        assert_eq!(
            pg.params[0],
            Param::Text(
                r#"strict $."launched \"at\"" >= "2024" && $."launched \"at\"" <= 5"#.into()
            )
        );
        let pg = compile(&rule(prop("n"), Op::Lt, json!(-1.5)), Dialect::Postgres).unwrap();
        assert_eq!(pg.params[0], Param::Text(r#"strict $."n" < -1.5"#.into()));
        // Null bounds are not jsonpath literals: nothing is ordered against null.
        let q = rule(prop("n"), Op::Between, json!([null, 3]));
        let pg = compile(&q, Dialect::Postgres).unwrap();
        assert!(
            pg.text.contains("(false AND e.properties @@ $"),
            "{}",
            pg.text
        );
    }

    #[test]
    fn parameters_are_numbered_per_dialect() {
        let q = rule(Field::Identifier, Op::In, json!(["a", "b"]));
        let sqlite = compile(&q, Dialect::Sqlite).unwrap();
        assert_eq!(
            sqlite.text,
            "((e.identifier = ?1 OR e.identifier = ?2)) AND e.blueprint IN (?3)"
        );
        let pg = compile(&q, Dialect::Postgres).unwrap();
        assert_eq!(
            pg.text,
            "((e.identifier = $1 OR e.identifier = $2)) AND e.blueprint IN ($3)"
        );
        assert_eq!(pg.params.len(), 3);
    }
}
