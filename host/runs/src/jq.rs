//! jq expressions (`{"jqQuery": "..."}`) compiled and run with jaq.
//!
//! An expression comes from an action's definition and its input from a request, so either may
//! be hostile: `def f: [f]; f` recurses without end and `[range(.form.n)]` can ask for 10^10
//! values. Every expression therefore runs on a small pool of dedicated threads (never on the
//! async runtime's), each with a large stack of known size, under three budgets checked each
//! time jaq evaluates a term and each time `range` yields: a number of steps, a time, and the
//! stack it may use. Running out unwinds the evaluation (see [`Exceeded`]) and the caller gets an
//! [`Error`]; the host and the pool thread live on.
//!
//! Messages never show input values: a run-time error from jaq is reduced to what failed (a
//! type, an arithmetic operation, an index) unless its text is a string written in the
//! expression itself (`error("no such team")`). Secret inputs are part of the input.
//!
//! The filters are jq's standard library except what reaches outside the expression: `env` (the
//! host's environment, which holds its secrets) is not defined, and `debug` and `stderr` print
//! nothing (their input may be a secret input). `halt` stops the expression with an error, never
//! the host. A panic inside jaq is caught and reported as an error.

use jaq_core::load::{Arena, File, Loader, lex, parse};
use jaq_core::{Compiler, Ctx, DataT, Vars, compile, data, load};
use jaq_json::{Num, Val};
use serde_json::{Map, Number, Value};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

type Filter = jaq_core::Filter<Budgeted>;

/// The longest expression accepted, in bytes.
const MAX_LEN: usize = 4096;
/// The deepest nesting of brackets accepted: jaq parses recursively, and a deep enough nesting
/// would overflow the stack.
const MAX_DEPTH: usize = 64;
/// Steps one evaluation may take (a step is one term evaluated or one value of `range`). A
/// condition over a thousand catalog entities takes some tens of thousands; this is a few
/// tens of milliseconds of work.
pub(crate) const MAX_STEPS: u64 = 1_000_000;
/// Time one evaluation may take, checked every [`TIME_CHECK_EVERY`] steps.
pub(crate) const MAX_TIME: Duration = Duration::from_millis(100);
const TIME_CHECK_EVERY: u64 = 1024;
/// Stack one evaluation may use. jaq evaluates recursively, so this bounds the recursion.
const MAX_STACK: usize = 8 << 20;
/// Stack of each pool thread: the evaluation's share plus room for what recurses without a
/// step (dropping a deeply nested value, comparing or printing one).
const THREAD_STACK: usize = 256 << 20;
/// Deepest value an expression may return (as serde_json reads at most).
const MAX_OUTPUT_DEPTH: usize = 128;
/// Most values (array items, object entries, scalars) an expression may return.
const MAX_OUTPUT_VALUES: usize = 100_000;
/// Most bytes of strings (and object keys) an expression may return.
const MAX_OUTPUT_BYTES: usize = 4 << 20;

/// Why a jq expression was refused or failed. None of the messages shows input values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    /// The expression does not compile (or is too long or too deep); the message says where.
    #[error("{0}")]
    Invalid(String),
    /// The expression failed while running; the message shows no input values.
    #[error("jq error: {0}")]
    Failed(String),
    /// The expression ran out of one of its budgets.
    #[error("jq expression exceeded its {0}")]
    Exceeded(Exceeded),
    /// The expression returned a value too large to hand back.
    #[error("jq expression returned {0}")]
    Output(String),
    /// jaq panicked.
    #[error("jq error: the expression crashed the interpreter")]
    Crashed,
    /// The evaluation threads are gone (they only go if the process is going).
    #[error("jq evaluation is unavailable")]
    Unavailable,
}

impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.to_string()
    }
}

/// A budget an evaluation ran out of. It is also the payload unwound out of jaq when that
/// happens (with `resume_unwind`, so no panic message is printed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exceeded {
    /// [`MAX_STEPS`].
    Steps,
    /// [`MAX_TIME`].
    Time,
    /// [`MAX_STACK`]: recursion too deep.
    Stack,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Steps => write!(f, "step budget ({MAX_STEPS} steps)"),
            Self::Time => write!(f, "time budget ({} ms)", MAX_TIME.as_millis()),
            Self::Stack => write!(
                f,
                "recursion budget ({} MiB of stack; is a definition recursing without end?)",
                MAX_STACK >> 20
            ),
        }
    }
}

/// Checks that `code` is a jq expression that compiles; the error says what is wrong and where.
pub(crate) fn check(code: &str) -> Result<(), Error> {
    let code = code.to_owned();
    on_pool(move || compile(&code).map(drop))
}

/// Runs `code` on `input` and returns its first output (`null` if it has none).
pub(crate) fn first(code: &str, input: &Value) -> Result<Value, Error> {
    let (code, input) = (code.to_owned(), input.clone());
    on_pool(move || evaluate(&code, &to_val(&input)))
}

/// Runs each of `codes` on `input` in turn, waiting without blocking the async runtime, and
/// returns their results up to and including the first for which `stop` holds.
pub(crate) async fn first_of_each(
    codes: Vec<String>,
    input: Value,
    stop: fn(&Result<Value, Error>) -> bool,
) -> Vec<Result<Value, Error>> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job = move || {
        let input = to_val(&input);
        let mut results = Vec::with_capacity(codes.len());
        for code in &codes {
            let result = guarded(|| evaluate(code, &input));
            let done = stop(&result);
            results.push(result);
            if done {
                break;
            }
        }
        let _ = reply.send(results);
    };
    if submit(Box::new(job)).is_err() {
        return vec![Err(Error::Unavailable)];
    }
    answer
        .await
        .unwrap_or_else(|_| vec![Err(Error::Unavailable)])
}

/// `code` run on `input` on the current (pool) thread, under the budgets.
fn evaluate(code: &str, input: &Val) -> Result<Value, Error> {
    let filter = compiled(code)?;
    let ctx = Ctx::<Budgeted>::new(Counted(&filter.lut), Vars::new([]));
    let output = filter.id.run((ctx, input.clone())).next();
    match output {
        None => Ok(Value::Null),
        Some(Ok(v)) => from_val(&v),
        Some(Err(exn)) => Err(match exn.get_err() {
            Ok(e) => Error::Failed(run_time_message(code, e.into_val())),
            Err(_) => Error::Failed("the expression halted".to_owned()),
        }),
    }
}

/// What a run-time error may say. jaq's messages embed the values involved ("cannot use
/// \"hunter2\" as number"), and those may be inputs, so only the kind of failure is kept. The
/// exception is an error whose text is a string literal of the expression (`error("no such
/// team")`): the author wrote it, so it shows nothing the expression does not.
fn run_time_message(code: &str, error: Val) -> String {
    let text = match &error {
        Val::TStr(text) => String::from_utf8_lossy(text).into_owned(),
        other => other.to_string(),
    };
    if !text.is_empty() && code.contains(&format!("\"{text}\"")) {
        return text;
    }
    const TYPES: [&str; 8] = [
        "number", "string", "array", "object", "boolean", "integer", "iterable", "null",
    ];
    if text.starts_with("cannot use ") {
        if let Some((_, wanted)) = text.rsplit_once(" as ")
            && TYPES.contains(&wanted)
        {
            return format!("a value cannot be used as {wanted}");
        }
        return "a value cannot be used that way".to_owned();
    }
    let kind = if text.starts_with("cannot calculate ") {
        "an arithmetic operation got values it cannot combine"
    } else if text.starts_with("cannot index ") {
        "a value cannot be indexed that way"
    } else if text.starts_with("invalid path expression") {
        "the left side of an update (`|=`, `=`, `path`, `del`) is not a path"
    } else if text.starts_with("cannot parse ") {
        "a string could not be parsed"
    } else {
        "the expression raised an error (its message is not shown: it could contain input values)"
    };
    kind.to_owned()
}

// ---------------------------------------------------------------------------------------------
// Budgets.

/// The budgets of the evaluation running on this thread. Outside an evaluation no step is
/// left, so a filter run anywhere else fails at once rather than without limits.
struct Budget {
    steps: Cell<u64>,
    deadline: Cell<Option<Instant>>,
    /// The lowest stack address the evaluation may reach (stacks grow down).
    stack_floor: Cell<usize>,
}

thread_local! {
    static BUDGET: Budget = const {
        Budget {
            steps: Cell::new(0),
            deadline: Cell::new(None),
            stack_floor: Cell::new(0),
        }
    };
}

/// An address on the current stack.
#[inline(always)]
fn stack_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// One step of the evaluation on this thread: unwinds out of jaq with an [`Exceeded`] when a
/// budget is spent.
#[inline]
fn step() {
    let exceeded = BUDGET.with(|b| {
        let left = b.steps.get();
        if left == 0 {
            return Some(Exceeded::Steps);
        }
        b.steps.set(left - 1);
        if stack_address() < b.stack_floor.get() {
            return Some(Exceeded::Stack);
        }
        if left % TIME_CHECK_EVERY == 0 && b.deadline.get().is_some_and(|d| Instant::now() >= d) {
            return Some(Exceeded::Time);
        }
        None
    });
    // Never unwind while already unwinding (a drop that evaluates): that would abort.
    if let Some(exceeded) = exceeded
        && !std::thread::panicking()
    {
        resume_unwind(Box::new(exceeded));
    }
}

/// `f` run with fresh budgets on this thread; a budget spent or a panic becomes an [`Error`].
fn guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    BUDGET.with(|b| {
        b.steps.set(MAX_STEPS);
        b.deadline.set(Some(Instant::now() + MAX_TIME));
    });
    let result = catch_unwind(AssertUnwindSafe(f));
    BUDGET.with(|b| {
        b.steps.set(0);
        b.deadline.set(None);
    });
    result.unwrap_or_else(|payload| match payload.downcast::<Exceeded>() {
        Ok(exceeded) => Err(Error::Exceeded(*exceeded)),
        Err(_) => Err(Error::Crashed),
    })
}

/// jaq's data for our filters: the look-up table, handed out through [`Counted`], which counts
/// a step each time jaq evaluates a term.
struct Budgeted;

impl DataT for Budgeted {
    type V<'a> = Val;
    type Data<'a> = Counted<'a>;
}

/// The look-up table of a filter; every term jaq evaluates starts by asking for it.
#[derive(Clone)]
struct Counted<'a>(&'a jaq_core::Lut<Budgeted>);

impl<'a> data::HasLut<'a, Budgeted> for Counted<'a> {
    #[inline]
    fn lut(&self) -> &'a jaq_core::Lut<Budgeted> {
        step();
        self.0
    }
}

// ---------------------------------------------------------------------------------------------
// The pool.

type Job = Box<dyn FnOnce() + Send>;

/// Where jobs go: the pool threads share one queue.
fn pool() -> &'static Mutex<mpsc::Sender<Job>> {
    static POOL: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(Mutex::new(queue));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("portico-jq-{i}"))
                .stack_size(THREAD_STACK)
                .spawn(move || {
                    let top = stack_address();
                    BUDGET.with(|b| b.stack_floor.set(top.saturating_sub(MAX_STACK)));
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a jq evaluation thread");
            }
        }
        Mutex::new(jobs)
    })
}

fn submit(job: Job) -> Result<(), Error> {
    let jobs = pool().lock().map_err(|_| Error::Unavailable)?.clone();
    jobs.send(job).map_err(|_| Error::Unavailable)
}

/// `f` run on a pool thread under fresh budgets; the calling thread waits for it (at most about
/// [`MAX_TIME`]).
fn on_pool<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let (reply, answer) = mpsc::sync_channel(1);
    submit(Box::new(move || {
        let _ = reply.send(guarded(f));
    }))?;
    answer.recv().unwrap_or(Err(Error::Unavailable))
}

// ---------------------------------------------------------------------------------------------
// Compiling.

/// Expressions kept compiled per thread, at most.
const MAX_KEPT: usize = 1024;

/// `code` compiled, once per thread: the same few expressions (input defaults, approval and
/// policy conditions, automation conditions) run on every request, and compiling costs far more
/// than running. Per thread because jaq's filters are not `Send`.
fn compiled(code: &str) -> Result<std::rc::Rc<Filter>, Error> {
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

fn compile(code: &str) -> Result<Filter, Error> {
    if code.len() > MAX_LEN {
        return Err(Error::Invalid(format!(
            "jq expression longer than {MAX_LEN} bytes"
        )));
    }
    if depth(code) > MAX_DEPTH {
        return Err(Error::Invalid(format!(
            "jq expression nested deeper than {MAX_DEPTH} brackets"
        )));
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
            .with_funs(funs::<Budgeted>())
            .compile(modules)
            .map_err(compile_errors)
    })
    .unwrap_or_else(|_| Err("jq expression crashed the parser".to_owned()))
    .map_err(Error::Invalid)
}

/// The native filters: jq's standard ones, less those that reach outside the expression.
fn funs<D: for<'a> DataT<V<'a> = Val>>() -> impl Iterator<Item = jaq_core::native::Fun<D>> {
    let quiet = silent::<D>();
    jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .filter(|(name, _, _)| !matches!(*name, "env" | "debug_empty" | "stderr_empty" | "range"))
        .chain(quiet)
        .chain(
            counted_range::<D>()
                .into_vec()
                .into_iter()
                .map(|f| jaq_core::native::run::<D>(f)),
        )
}

/// `range($from; $to; $by)` as jaq has it, with a step per value: jaq's own yields its values
/// without evaluating a term, so `[range(1e10)]` would never meet the step budget.
fn counted_range<D: for<'a> DataT<V<'a> = Val>>()
-> Box<[jaq_core::native::Filter<jaq_core::RunPtr<D>>]> {
    Box::new([("range", jaq_core::native::v(3), |mut cv| {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let by = cv.0.pop_var();
        let to = cv.0.pop_var();
        let from = cv.0.pop_var();
        let direction = by.partial_cmp(&Val::from(0isize)).unwrap_or(Equal);
        let mut next = Some(Ok(from));
        Box::new(core::iter::from_fn(move || match next.take()? {
            Ok(x) => {
                let more = match direction {
                    Greater => x < to,
                    Less => x > to,
                    Equal => x != to,
                };
                if !more {
                    return None;
                }
                step();
                next = Some((x.clone() + by.clone()).map_err(jaq_core::Exn::from));
                Some(Ok(x))
            }
            Err(e) => Some(Err(e)),
        }))
    })])
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

/// What an output may still hold.
struct Room {
    values: usize,
    bytes: usize,
}

/// A jaq value as a JSON value: byte strings become text, non-finite numbers `null` (as in jq),
/// and keys that are not strings are written as JSON. The value must fit the output limits: it
/// is dropped and read on threads with ordinary stacks.
fn from_val(v: &Val) -> Result<Value, Error> {
    let mut room = Room {
        values: MAX_OUTPUT_VALUES,
        bytes: MAX_OUTPUT_BYTES,
    };
    convert(v, 0, &mut room)
}

fn convert(v: &Val, depth: usize, room: &mut Room) -> Result<Value, Error> {
    if depth >= MAX_OUTPUT_DEPTH {
        return Err(Error::Output(format!(
            "a value nested deeper than {MAX_OUTPUT_DEPTH} levels"
        )));
    }
    room.values = room
        .values
        .checked_sub(1)
        .ok_or_else(|| Error::Output(format!("a value of more than {MAX_OUTPUT_VALUES} items")))?;
    let text = |b: &[u8], room: &mut Room| {
        room.bytes = room.bytes.checked_sub(b.len()).ok_or_else(|| {
            Error::Output(format!(
                "a value holding more than {} MiB of text",
                MAX_OUTPUT_BYTES >> 20
            ))
        })?;
        Ok::<_, Error>(String::from_utf8_lossy(b).into_owned())
    };
    Ok(match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => match n {
            Num::Int(i) => Value::from(*i as i64),
            Num::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Num::BigInt(_) | Num::Dec(_) => serde_json::from_str::<Number>(&n.to_string())
                .map(Value::Number)
                .unwrap_or(Value::Null),
        },
        Val::TStr(b) | Val::BStr(b) => Value::String(text(b, room)?),
        Val::Arr(a) => Value::Array(
            a.iter()
                .map(|v| convert(v, depth + 1, room))
                .collect::<Result<_, _>>()?,
        ),
        Val::Obj(o) => {
            let mut map = Map::new();
            for (k, v) in o.iter() {
                let key = match k {
                    Val::TStr(b) | Val::BStr(b) => text(b, room)?,
                    other => convert(other, depth + 1, room)?.to_string(),
                };
                map.insert(key, convert(v, depth + 1, room)?);
            }
            Value::Object(map)
        }
    })
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
        let e = check(".form.x ==").unwrap_err().to_string();
        assert!(e.starts_with("jq syntax error: expected term"), "{e}");
        let e = check("(.a").unwrap_err().to_string();
        assert!(e.contains("closing parenthesis"), "{e}");
        let e = check("\"abc").unwrap_err().to_string();
        assert!(e.contains("closing quote"), "{e}");
        let e = check(".a | nosuch(1)").unwrap_err().to_string();
        assert_eq!(e, "jq error: undefined filter `nosuch/1`");
        let e = check("$nope").unwrap_err().to_string();
        assert_eq!(e, "jq error: undefined variable `$nope`");
    }

    #[test]
    fn the_environment_is_out_of_reach_and_halt_does_not_stop_the_host() {
        assert!(check("env").is_err());
        assert!(check("$ENV").is_err());
        assert!(check("import \"x\" as x; 1").is_err());
        assert_eq!(first("1 | debug | stderr", &json!(null)), Ok(json!(1)));
        let e = first("halt_error(1)", &json!(null))
            .unwrap_err()
            .to_string();
        assert!(e.contains("halted"), "{e}");
        let e = first("error(\"boom\")", &json!(null))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "jq error: boom");
    }

    #[test]
    fn long_or_deep_expressions_are_refused() {
        assert!(
            check(&"(".repeat(100))
                .unwrap_err()
                .to_string()
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
                .to_string()
                .contains("longer than")
        );
    }

    /// The input of every hostile expression below: it holds a secret, which no error may show.
    fn secret_input() -> Value {
        json!({"form": {"n": 10_000_000_000u64, "password": "hunter2-s3cret"},
            "user": {"email": "ann@example.com"}})
    }

    /// `code` on [`secret_input`] fails with a budget error that shows no input value.
    fn refused(code: &str) -> Error {
        let error = first(code, &secret_input()).expect_err(code);
        let message = error.to_string();
        assert!(!message.contains("hunter2"), "{code}: {message}");
        assert!(!message.contains("ann@example"), "{code}: {message}");
        error
    }

    fn assert_out_of_budget(code: &str) {
        let error = refused(code);
        assert!(
            matches!(error, Error::Exceeded(_)),
            "{code}: expected a budget error, got {error}"
        );
        assert!(
            error.to_string().starts_with("jq expression exceeded its "),
            "{error}"
        );
    }

    /// The pool still evaluates after the hostile expressions.
    fn assert_alive() {
        assert_eq!(
            first(".form.n + 1", &json!({"form": {"n": 1}})),
            Ok(json!(2))
        );
    }

    #[test]
    fn endless_recursion_runs_out_of_its_stack_budget_and_the_host_lives_on() {
        let error = refused("def f: [f]; f");
        assert_eq!(error, Error::Exceeded(Exceeded::Stack));
        assert!(error.to_string().contains("recursion budget"), "{error}");
        refused("def f: 1 + f; f");
        refused("def f: f | f; f");
        assert_alive();
    }

    #[test]
    fn unbounded_generators_run_out_of_their_budget() {
        for code in [
            "[range(1e10)]",
            "[range(.form.n)]",
            "last(range(.form.n))",
            "[limit(1e9; repeat(1))]",
            "[repeat(.)]",
            "until(false; .)",
            "0 | until(. == -1; . + 1)",
            "0 | [recurse(. + 1)]",
            "0 | [recurse(. + 1; . > -1)]",
            "reduce range(1e9) as $i (0; . + $i)",
            "[range(1e9)] | walk(.)",
            "[range(1e3)] | map([range(1e3)] | map(tostring)) | walk(.)",
            "[.form.password | limit(1e9; repeat(.))] | add",
            "any(range(1e10); . < 0)",
        ] {
            assert_out_of_budget(code);
        }
        assert_alive();
    }

    #[test]
    fn a_deeply_nested_value_built_by_reduce_is_refused_and_dropped_safely() {
        // Each step nests one level deeper: the budget ends it, and the value (hundreds of
        // thousands of levels) is dropped on the evaluation thread's large stack.
        assert_out_of_budget("reduce range(1e9) as $i (null; [.])");
        assert_out_of_budget("reduce range(1e9) as $i (null; {a: .})");
        // Within the budget but too deep to hand back.
        let e = refused("reduce range(1000) as $i (null; [.])");
        assert!(e.to_string().contains("nested deeper than 128"), "{e}");
        assert_alive();
    }

    #[test]
    fn outputs_too_large_to_hand_back_are_refused() {
        let e = refused("[range(100001)]");
        assert!(e.to_string().contains("more than 100000 items"), "{e}");
        let e = refused("\"x\" * 5000000");
        assert!(e.to_string().contains("MiB of text"), "{e}");
        // A float count is not a repetition in jaq.
        refused("\"x\" * 1e9");
        assert_alive();
    }

    #[test]
    fn ordinary_work_fits_the_budget() {
        let entities: Vec<Value> = (0..1000)
            .map(|i| json!({"identifier": format!("svc-{i}"), "team": if i % 2 == 0 { "a" } else { "b" }}))
            .collect();
        let input = json!({"results": {"mine": {"entities": entities}}});
        assert_eq!(
            first(
                ".results.mine.entities | map(select(.team == \"a\")) | length",
                &input
            ),
            Ok(json!(500))
        );
        assert_eq!(
            first("[range(10000)] | add", &json!(null)),
            Ok(json!(49995000))
        );
    }

    #[test]
    fn run_time_errors_never_show_input_values() {
        for (code, expected) in [
            (".form.password | tonumber", "a string could not be parsed"),
            (
                ".form.password + 1",
                "an arithmetic operation got values it cannot combine",
            ),
            (".form.password | keys", "a value cannot be used"),
            (".form.password[0]", "a value cannot be indexed that way"),
            (".form.password | error", "its message is not shown"),
            ("error(.form)", "its message is not shown"),
            (
                "error(\"bad: \" + .form.password)",
                "its message is not shown",
            ),
            (".form.password | test(\"(\")", ""),
            ("path(.form.password | ascii_upcase)", "is not a path"),
        ] {
            let e = refused(code).to_string();
            assert!(e.starts_with("jq error: "), "{code}: {e}");
            assert!(e.contains(expected), "{code}: {e}");
        }
        // The author's own message is shown: it is part of the expression.
        let e = first(
            "if .form.password != \"\" then error(\"no password expected\") else 1 end",
            &secret_input(),
        );
        assert_eq!(e.unwrap_err().to_string(), "jq error: no password expected");
    }
}
