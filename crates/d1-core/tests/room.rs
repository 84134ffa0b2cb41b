//! `room::peak_resident_bytes` in a process of its own: the unit tests'
//! threads share one peak, which any of them may have raised already.

#[test]
fn the_peak_resident_set_grows_by_what_the_process_touches() {
    let before = d1_core::room::peak_resident_bytes().expect("the peak can be told here");
    let held = std::hint::black_box(vec![1u8; 256 << 20]);
    let after = d1_core::room::peak_resident_bytes().unwrap();
    assert!(after >= before + (192 << 20), "{before} -> {after}");
    drop(held);
}
