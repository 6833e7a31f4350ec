//! Every target over its committed corpus and regression inputs (as given
//! and with checksums fixed up): what CI keeps of the fuzzing. Plus the
//! fuzzer's own checks: it finds a planted crash and an oversized
//! allocation, and writes the input.

use std::time::Duration;

use corelog_fuzz::corpus;
use corelog_fuzz::engine::{self, execute, execute_both};
use corelog_fuzz::targets::{self, Target};

#[test]
fn every_target_passes_its_corpus_and_regressions() {
    for t in targets::ALL {
        let corpus = corpus::load(&corpus::corpus_dir(t.name)).unwrap();
        assert!(
            corpus.len() >= 3,
            "{}: {} corpus files, expected the committed seeds",
            t.name,
            corpus.len()
        );
        let regressions = corpus::load(&corpus::regressions_dir(t.name)).unwrap();
        for (path, bytes) in corpus.iter().chain(&regressions) {
            if let Err(e) = execute_both(t, bytes) {
                panic!("{}: {}: {e}", t.name, path.display());
            }
        }
    }
}

#[test]
fn every_target_runs_its_own_seeds() {
    // The seeds come from our encoders: none may fail, and each must
    // already have right checksums (the fixup leaves it alone).
    for t in targets::ALL {
        let seeds = (t.seeds)();
        assert!(!seeds.is_empty(), "{}: no seeds", t.name);
        for s in &seeds {
            execute(t, s).unwrap_or_else(|e| panic!("{}: {e}", t.name));
            let mut fixed = s.clone();
            (t.fixup)(&mut fixed);
            assert_eq!(&fixed, s, "{}: the fixup changed a valid seed", t.name);
        }
    }
}

fn panics_on_magic(input: &[u8]) -> u64 {
    assert!(
        !input.windows(2).any(|w| w == [0xDE, 0xAD]),
        "planted crash"
    );
    input.len() as u64 % 3
}

fn allocates_by_first_byte(input: &[u8]) -> u64 {
    let n = usize::from(input.first().copied().unwrap_or(0)) << 12;
    let v = vec![1u8; n];
    std::hint::black_box(&v);
    0
}

fn no_fixup(_: &mut [u8]) {}

fn seeds_de() -> Vec<Vec<u8>> {
    vec![vec![0xDE, 0x00, 0x01]]
}

const PLANTED: Target = Target {
    name: "planted",
    seeds: seeds_de,
    fixup: no_fixup,
    run: panics_on_magic,
    max_alloc: 1 << 20,
    alloc_per_input_byte: 0,
};

const GREEDY: Target = Target {
    name: "greedy",
    seeds: seeds_de,
    fixup: no_fixup,
    run: allocates_by_first_byte,
    max_alloc: 100 << 12,
    alloc_per_input_byte: 0,
};

#[test]
fn the_fuzzer_finds_a_planted_crash_and_writes_it() {
    let dir = std::env::temp_dir().join(format!("corelog-fuzz-test-{}", std::process::id()));
    let r = engine::fuzz(
        &PLANTED,
        Vec::new(),
        3,
        Duration::from_secs(60),
        1_000_000,
        &dir,
    );
    let (path, why) = r.crash.expect("the planted crash was not found");
    assert!(why.contains("planted crash"), "{why}");
    let input = std::fs::read(&path).unwrap();
    assert!(input.windows(2).any(|w| w == [0xDE, 0xAD]));
    assert!(
        path.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("planted-")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_allocation_above_the_bound_fails_the_run() {
    assert!(execute(&GREEDY, &[50]).is_ok());
    let e = execute(&GREEDY, &[200]).unwrap_err();
    assert!(e.contains("above the target's bound"), "{e}");
}

#[test]
fn a_clean_run_reports_its_executions() {
    let dir = std::env::temp_dir().join("corelog-fuzz-unused");
    for t in targets::ALL {
        let r = engine::fuzz(t, Vec::new(), 5, Duration::from_secs(60), 2_000, &dir);
        assert!(r.crash.is_none(), "{}: {:?}", t.name, r.crash);
        assert!(
            r.executions >= 2_000,
            "{}: {} executions",
            t.name,
            r.executions
        );
        assert!(r.outcomes >= 2, "{}: {} outcomes", t.name, r.outcomes);
    }
}
