//! jq expressions (`{"jqQuery": "..."}`) compiled and run with jaq.
//!
//! Everything here is synchronous and returns plain `serde_json` values: jaq's values are not
//! `Send`, so none of them outlives a call.
//!
//! The filters are jq's standard library except what reaches outside the expression: `env` (the
//! host's environment, which holds its secrets) is not defined, and `debug` and `stderr` print
//! nothing (their input may be a secret input). `halt` stops the expression with an error, never
//! the host. A panic inside jaq is caught and reported as an error.

use jaq_core::load::{Arena, File, Loader, lex, parse};
use jaq_core::{Compiler, Ctx, DataT, Vars, compile, data, load};
use jaq_json::{Num, Val};
use serde_json::{Map, Number, Value};
use std::panic::{AssertUnwindSafe, catch_unwind};

type Data = data::JustLut<Val>;
type Filter = jaq_core::Filter<Data>;

/// The longest expression accepted, in bytes.
const MAX_LEN: usize = 4096;
/// The deepest nesting of brackets accepted: jaq parses recursively, and a deep enough nesting
/// would overflow the stack.
const MAX_DEPTH: usize = 64;

/// Checks that `code` is a jq expression that compiles; the error says what is wrong and where.
pub(crate) fn check(code: &str) -> Result<(), String> {
    compile(code).map(drop)
}

/// Runs `code` on `input` and returns its first output (`null` if it has none).
pub(crate) fn first(code: &str, input: &Value) -> Result<Value, String> {
    let filter = compiled(code)?;
    let input = to_val(input);
    catch_unwind(AssertUnwindSafe(|| {
        let ctx = Ctx::<Data>::new(&filter.lut, Vars::new([]));
        match filter.id.run((ctx, input)).next() {
            None => Ok(Value::Null),
            Some(Ok(v)) => Ok(from_val(&v)),
            Some(Err(exn)) => Err(match exn.get_err() {
                Ok(e) => match e.into_val() {
                    Val::TStr(text) => format!("jq error: {}", String::from_utf8_lossy(&text)),
                    other => format!("jq error: {other}"),
                },
                Err(_) => "jq error: the expression halted".to_owned(),
            }),
        }
    }))
    .unwrap_or_else(|_| Err("jq error: the expression crashed the interpreter".to_owned()))
}

/// Expressions kept compiled per thread, at most.
const MAX_KEPT: usize = 1024;

/// `code` compiled, once per thread: the same few expressions (input defaults, approval and
/// policy conditions, automation conditions) run on every request, and compiling costs far more
/// than running. Per thread because jaq's filters are not `Send`.
fn compiled(code: &str) -> Result<std::rc::Rc<Filter>, String> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;
    thread_local! {
        static KEPT: RefCell<HashMap<String, Rc<Filter>>> = RefCell::default();
    }
    if let Some(filter) = KEPT.with(|k| k.borrow().get(code).cloned()) {
        return Ok(filter);
    }
    let filter = Rc::new(compile(code)?);
    KEPT.with(|k| {
        let mut kept = k.borrow_mut();
        if kept.len() >= MAX_KEPT {
            kept.clear();
        }
        kept.insert(code.to_owned(), filter.clone());
    });
    Ok(filter)
}

fn compile(code: &str) -> Result<Filter, String> {
    if code.len() > MAX_LEN {
        return Err(format!("jq expression longer than {MAX_LEN} bytes"));
    }
    if depth(code) > MAX_DEPTH {
        return Err(format!(
            "jq expression nested deeper than {MAX_DEPTH} brackets"
        ));
    }
    catch_unwind(|| {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|errs| load_errors(code, errs))?;
        Compiler::default()
            .with_funs(funs::<Data>())
            .compile(modules)
            .map_err(compile_errors)
    })
    .unwrap_or_else(|_| Err("jq expression crashed the parser".to_owned()))
}

/// The native filters: jq's standard ones, less those that reach outside the expression.
fn funs<D: for<'a> DataT<V<'a> = Val>>() -> impl Iterator<Item = jaq_core::native::Fun<D>> {
    let quiet = silent::<D>();
    jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .filter(|(name, _, _)| !matches!(*name, "env" | "debug_empty" | "stderr_empty"))
        .chain(quiet)
}

/// `debug` and `stderr` without their output.
fn silent<D: DataT>() -> impl Iterator<Item = jaq_core::native::Fun<D>> {
    let v = jaq_core::native::v;
    let filters: [jaq_core::native::Filter<jaq_core::RunPtr<D>>; 2] = [
        ("debug_empty", v(0), |_| Box::new(core::iter::empty())),
        ("stderr_empty", v(0), |_| Box::new(core::iter::empty())),
    ];
    filters.into_iter().map(jaq_core::native::run)
}

/// The deepest nesting of `(`, `[` and `{`, outside string literals (roughly: escapes are
/// skipped, interpolations are counted as string).
fn depth(code: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for c in code.chars() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Where `part` (a slice of `whole`) starts, in characters from 1.
fn position(whole: &str, part: &str) -> Option<usize> {
    let offset = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let prefix = whole.get(..offset)?;
    Some(prefix.chars().count() + 1)
}

/// What was found instead, as shown in a message.
fn found(whole: &str, part: &str) -> String {
    let snippet: String = part.chars().take(12).collect();
    match (snippet.is_empty(), position(whole, part)) {
        (true, _) => "the end of the expression".to_owned(),
        (false, Some(at)) => format!("`{snippet}` at character {at}"),
        (false, None) => format!("`{snippet}`"),
    }
}

fn load_errors(code: &str, errs: load::Errors<&str, ()>) -> String {
    let mut messages = Vec::new();
    for (_file, err) in errs {
        match err {
            load::Error::Io(errs) => {
                messages.extend(errs.into_iter().map(|(path, e)| format!("`{path}`: {e}")))
            }
            load::Error::Lex(errs) => {
                for (expect, at) in errs {
                    let expected = match expect {
                        lex::Expect::Digit => "a digit",
                        lex::Expect::Ident => "an identifier",
                        lex::Expect::Delim("(") => "a closing parenthesis",
                        lex::Expect::Delim("[") => "a closing bracket",
                        lex::Expect::Delim("{") => "a closing brace",
                        lex::Expect::Delim(_) => "a closing quote",
                        lex::Expect::Escape => "a string escape sequence",
                        lex::Expect::Unicode => "a 4-digit hexadecimal code point",
                        _ => "a token",
                    };
                    messages.push(format!("expected {expected}, found {}", found(code, at)));
                }
            }
            load::Error::Parse(errs) => {
                for (expect, at) in errs {
                    let expected = match expect {
                        parse::Expect::Just(s) => format!("`{s}`"),
                        parse::Expect::Nothing => "the end of the expression".to_owned(),
                        other => other.as_str().to_owned(),
                    };
                    messages.push(format!("expected {expected}, found {}", found(code, at)));
                }
            }
        }
    }
    format!("jq syntax error: {}", messages.join("; "))
}

fn compile_errors(errs: compile::Errors<&str, ()>) -> String {
    let messages: Vec<String> = errs
        .into_iter()
        .flat_map(|(_file, errs)| errs)
        .map(|(name, undefined)| match undefined {
            compile::Undefined::Filter(arity) => format!("undefined filter `{name}/{arity}`"),
            other => format!("undefined {} `{name}`", other.as_str()),
        })
        .collect();
    format!("jq error: {}", messages.join("; "))
}

/// A JSON value as a jaq value.
fn to_val(v: &Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Val::Num(Num::from_integral(i)),
            (None, Some(u)) => Val::Num(Num::from_integral(u)),
            _ => Val::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Val::from(s.clone()),
        Value::Array(a) => a.iter().map(to_val).collect(),
        Value::Object(o) => Val::obj(
            o.iter()
                .map(|(k, v)| (Val::from(k.clone()), to_val(v)))
                .collect(),
        ),
    }
}

/// A jaq value as a JSON value: byte strings become text, non-finite numbers `null` (as in jq),
/// and keys that are not strings are written as JSON.
fn from_val(v: &Val) -> Value {
    match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => match n {
            Num::Int(i) => Value::from(*i as i64),
            Num::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Num::BigInt(_) | Num::Dec(_) => serde_json::from_str::<Number>(&n.to_string())
                .map(Value::Number)
                .unwrap_or(Value::Null),
        },
        Val::TStr(b) | Val::BStr(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Val::Arr(a) => Value::Array(a.iter().map(from_val).collect()),
        Val::Obj(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let key = match from_val(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, from_val(v))
                })
                .collect::<Map<String, Value>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runs_over_json_and_returns_the_first_output() {
        let input = json!({"form": {"n": 2, "tags": ["a", "b"]}, "user": {"email": "a@b.c"}});
        assert_eq!(first(".form.n * 3", &input), Ok(json!(6)));
        assert_eq!(
            first(".form.tags | map(ascii_upcase)", &input),
            Ok(json!(["A", "B"]))
        );
        assert_eq!(first(".user.email | test(\"@b\")", &input), Ok(json!(true)));
        assert_eq!(first(".form.tags[]", &input), Ok(json!("a")));
        assert_eq!(first("empty", &input), Ok(json!(null)));
        assert_eq!(
            first("{a: 1.5, b: null}", &input),
            Ok(json!({"a": 1.5, "b": null}))
        );
        assert_eq!(
            first("9007199254740993 + 0", &input),
            Ok(json!(9007199254740993u64))
        );
    }

    #[test]
    fn syntax_errors_say_what_was_expected_and_where() {
        let e = check(".form.x ==").unwrap_err();
        assert!(e.starts_with("jq syntax error: expected term"), "{e}");
        let e = check("(.a").unwrap_err();
        assert!(e.contains("closing parenthesis"), "{e}");
        let e = check("\"abc").unwrap_err();
        assert!(e.contains("closing quote"), "{e}");
        let e = check(".a | nosuch(1)").unwrap_err();
        assert_eq!(e, "jq error: undefined filter `nosuch/1`");
        let e = check("$nope").unwrap_err();
        assert_eq!(e, "jq error: undefined variable `$nope`");
    }

    #[test]
    fn the_environment_is_out_of_reach_and_halt_does_not_stop_the_host() {
        assert!(check("env").is_err());
        assert!(check("$ENV").is_err());
        assert!(check("import \"x\" as x; 1").is_err());
        assert_eq!(first("1 | debug | stderr", &json!(null)), Ok(json!(1)));
        let e = first("halt_error(1)", &json!(null)).unwrap_err();
        assert!(e.contains("halted"), "{e}");
        let e = first("error(\"boom\")", &json!(null)).unwrap_err();
        assert_eq!(e, "jq error: boom");
    }

    #[test]
    fn long_or_deep_expressions_are_refused() {
        assert!(
            check(&"(".repeat(100))
                .unwrap_err()
                .contains("nested deeper")
        );
        let deepest = format!(
            "{}1{}",
            "[(".repeat(MAX_DEPTH / 2),
            ")]".repeat(MAX_DEPTH / 2)
        );
        let expected = (0..MAX_DEPTH / 2).fold(json!(1), |v, _| json!([v]));
        assert_eq!(first(&deepest, &json!(null)), Ok(expected));
        assert!(
            check(&"1 + ".repeat(2000))
                .unwrap_err()
                .contains("longer than")
        );
    }
}
