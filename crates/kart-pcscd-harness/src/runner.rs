//! A minimal test runner for `harness = false` test binaries that must run
//! inside the private namespace. It prints libtest's per-test lines and its
//! closing `test result:` line, so CI and humans read it like `cargo test`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// One named test over a shared environment.
pub type Test<E> = (&'static str, fn(&mut E));

/// Runs the tests whose names contain one of the non-flag command-line
/// arguments (all tests when there are none), in order, and returns the
/// names of those that failed.
///
/// ```
/// use kart_pcscd_harness::runner::{run, Test};
/// fn adds(n: &mut u32) { *n += 1; assert_eq!(*n, 1); }
/// let tests: &[Test<u32>] = &[("adds", adds)];
/// assert!(run(&mut 0, tests).is_empty());
/// ```
pub fn run<E>(env: &mut E, tests: &[Test<E>]) -> Vec<&'static str> {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected: Vec<&Test<E>> = tests
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let started = Instant::now();
    let mut failed = Vec::new();
    for (name, test) in selected.iter().copied() {
        let t = Instant::now();
        let ok = catch_unwind(AssertUnwindSafe(|| test(env))).is_ok();
        let ms = t.elapsed().as_millis();
        println!(
            "test {name} ... {} ({ms} ms)",
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            failed.push(*name);
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len(),
        tests.len() - selected.len(),
        started.elapsed().as_secs_f64()
    );
    failed
}
