//! `room::peak_resident_bytes` and `room::MemoryCeiling` in a process of
//! their own: the unit tests' threads share one peak, which any of them may
//! have raised already.

#[test]
fn the_peak_resident_set_grows_by_what_the_process_touches() {
    let before = d1_core::room::peak_resident_bytes().expect("the peak can be told here");
    let held = std::hint::black_box(vec![1u8; 256 << 20]);
    let after = d1_core::room::peak_resident_bytes().unwrap();
    assert!(after >= before + (192 << 20), "{before} -> {after}");
    drop(held);
}

/// Set in the copy of this test binary that
/// `a_memory_ceiling_is_counted_from_the_process_own_peak_not_its_parents`
/// starts.
const CHILD: &str = "D1_CORE_ROOM_TEST_CHILD";

/// A process started by one that had held 300 MB (as `cargo xtask` is
/// cargo replaced by the xtask, and an e2e test's xtask is started by the
/// test harness) is allowed 64 MB more than it holds itself, not 64 MB
/// more than its parent held: Linux seeds `ru_maxrss` at `exec` with the
/// parent's peak, so a ceiling counted from it let the child grow by the
/// parent's peak before it was stopped.
#[test]
fn a_memory_ceiling_is_counted_from_the_process_own_peak_not_its_parents() {
    if std::env::var_os(CHILD).is_some() {
        let ceiling = d1_core::room::MemoryCeiling::above_own_peak(64 << 20).unwrap();
        let held = std::hint::black_box(vec![1u8; 128 << 20]);
        assert!(
            ceiling.passed(),
            "128 MB held, and the 64 MB ceiling not passed"
        );
        drop(held);
        return;
    }
    let parent = std::hint::black_box(vec![1u8; 300 << 20]);
    let run = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_memory_ceiling_is_counted_from_the_process_own_peak_not_its_parents",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    drop(parent);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{said}");
    assert!(said.contains("1 passed"), "the child ran no test:\n{said}");
}
