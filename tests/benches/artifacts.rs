//! What checking a cached compiled plugin costs on load: the cache keeps an HMAC-SHA256 beside
//! each artifact, and the runtime reads the artifact, checks the MAC and deserializes the checked
//! bytes from memory. This compares, for a ~100 KB and a ~12 MB artifact:
//!
//! - `file`: `Component::deserialize_file` (the load before MACs: wasmtime maps the file),
//! - `mac`: reading the file and checking its MAC alone,
//! - `checked`: read + MAC + `Component::deserialize` of the bytes (what the runtime does),
//! - `bytes`: `Component::deserialize` of bytes already in memory (the copy it makes),
//! - `twice`: read + MAC, then `deserialize_file` (the alternative: the file read twice; it is
//!   not used, as the file could be replaced between the check and the second read).
//!
//!     cargo bench -p portico-tests --bench artifacts
//!
//! The artifacts are of synthetic components (many small functions), compiled once.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;
use std::time::Instant;
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// A component whose core module has `functions` functions of 60 instructions each.
fn synthetic(functions: usize) -> Vec<u8> {
    let mut wat = String::from("(component (core module\n");
    for f in 0..functions {
        wat.push_str(&format!(
            "(func (export \"f{f}\") (param i32) (result i32) local.get 0\n"
        ));
        for i in 0..20 {
            wat.push_str(&format!(
                "i32.const {} i32.mul i32.const {i} i32.add\n",
                f + i + 3
            ));
        }
        wat.push_str(")\n");
    }
    wat.push_str("))");
    wat::parse_str(&wat).expect("valid wat")
}

fn mac(key: &[u8; 32], name: &str, bytes: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(name.as_bytes());
    mac.update(b"\0");
    mac.update(bytes);
    mac
}

fn median_micros(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn measure(engine: &Engine, dir: &Path, functions: usize, runs: usize) {
    let compiled = Component::new(engine, synthetic(functions))
        .expect("compiles")
        .serialize()
        .expect("serializes");
    let key = [7u8; 32];
    let name = format!("synthetic{functions}");
    let path = dir.join(format!("{name}.cwasm"));
    std::fs::write(&path, &compiled).expect("written");
    let tag = mac(&key, &name, &compiled).finalize().into_bytes();

    let read_and_check = || {
        let bytes = std::fs::read(&path).expect("read");
        mac(&key, &name, &bytes)
            .verify_slice(&tag)
            .expect("genuine");
        bytes
    };
    // SAFETY (all three): this process serialized these bytes with this engine just above.
    let file = median_micros(runs, || {
        unsafe { Component::deserialize_file(engine, &path) }.expect("loads");
    });
    let mac_only = median_micros(runs, || {
        read_and_check();
    });
    let checked = median_micros(runs, || {
        let bytes = read_and_check();
        unsafe { Component::deserialize(engine, &bytes) }.expect("loads");
    });
    let in_memory = std::fs::read(&path).expect("read");
    let bytes = median_micros(runs, || {
        unsafe { Component::deserialize(engine, &in_memory) }.expect("loads");
    });
    let twice = median_micros(runs, || {
        read_and_check();
        unsafe { Component::deserialize_file(engine, &path) }.expect("loads");
    });
    println!(
        "{:>10} bytes: file {file:>9.0} µs | mac {mac_only:>9.0} µs | checked {checked:>9.0} µs \
         | bytes {bytes:>9.0} µs | twice {twice:>9.0} µs | check costs {:+.0} µs ({:+.0}%)",
        compiled.len(),
        checked - file,
        (checked - file) / file * 100.0,
    );
}

fn main() {
    let engine = Engine::new(&Config::new()).expect("engine");
    let dir = tempfile::tempdir().expect("temp dir");
    println!("median of each; times include reading the file from the page cache");
    measure(&engine, dir.path(), 130, 200);
    measure(&engine, dir.path(), 16_000, 30);
}
