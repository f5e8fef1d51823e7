//! Portico's runtime, end to end: real components built for wasm32-wasip2, run by the real
//! runtime, talking to a real HTTP server on 127.0.0.1.

/// Each named `async fn(guest: &'static str)` becomes a module of tests, one per listed guest:
/// `per_guest!([rust = PROBE, python = PY_PROBE] a_test)` makes `a_test::rust`, `a_test::python`.
macro_rules! per_guest {
    ($guests:tt $($test:ident),+ $(,)?) => {$( per_guest!(@one $test $guests); )+};
    (@one $test:ident [$($language:ident = $guest:ident),+]) => {
        mod $test {
            $(
                #[tokio::test]
                async fn $language() {
                    super::$test(portico_tests::artifacts::$guest).await
                }
            )+
        }
    };
}

mod capabilities;
mod contract;
mod hardening;
mod hostile;
mod languages;
mod loading;
mod plugins;
mod scratch;
