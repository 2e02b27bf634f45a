//! Streams: caps and truncation, inputs the child never reads, huge inputs,
//! and no deadlock whatever order the child reads and writes in.

use std::time::{Duration, Instant};

use virt_hooks_exec::WaitStatus;

use crate::util::{limits, sh};

#[test]
fn caps_truncate_but_the_child_is_read_to_its_end() {
    let finished = sh("head -c 1000000 /dev/zero; printf 0123456789abcdef >&2; exit 4").run_with(
        None,
        &limits(|l| (l.stdout, l.stderr) = (1000, 10)),
        None,
    );
    // The child wrote far beyond a pipe's capacity and still exited: its
    // output was drained, not left blocking it.
    assert_eq!(finished.status.expect("status"), WaitStatus::Exited { code: 4 });
    assert_eq!((finished.stdout.data.len(), finished.stdout.truncated), (1000, true));
    assert_eq!(
        (finished.stderr.data.as_slice(), finished.stderr.truncated),
        (&b"0123456789"[..], true)
    );
}

#[test]
fn output_exactly_at_the_cap_is_not_truncated_and_one_byte_more_is() {
    let at = sh("printf 12345").run_with(None, &limits(|l| l.stdout = 5), None);
    assert_eq!((at.stdout.data.as_slice(), at.stdout.truncated), (&b"12345"[..], false));
    let over = sh("printf 123456").run_with(None, &limits(|l| l.stdout = 5), None);
    assert_eq!((over.stdout.data.as_slice(), over.stdout.truncated), (&b"12345"[..], true));
    let none = sh("printf 1").run_with(None, &limits(|l| l.stdout = 0), None);
    assert!(none.stdout.data.is_empty() && none.stdout.truncated);
}

#[test]
fn sixteen_mib_to_a_child_that_never_reads_its_stdin() {
    let input = vec![b'x'; 16 << 20];
    let started = Instant::now();
    let finished = sh("echo ignored").run_with(Some(&input), &Default::default(), None);
    assert!(started.elapsed() < Duration::from_secs(30), "no hang on the unread input");
    assert_eq!(finished.status.expect("status"), WaitStatus::Exited { code: 0 });
    assert_eq!(finished.stdout.data, b"ignored\n");
}

#[test]
fn stdin_closed_early_by_a_child_that_goes_on() {
    let input = vec![b'x'; 4 << 20];
    let finished =
        sh("exec 0<&-; sleep 0.1; echo ok").run_with(Some(&input), &Default::default(), None);
    assert_eq!(finished.stdout.data, b"ok\n");
}

#[test]
fn sixty_four_mib_through_cat_come_back_whole() {
    let input: Vec<u8> = (0..64u32 << 20).map(|i| (i % 251) as u8).collect();
    let lim = limits(|l| (l.stdout, l.stdout_reserve) = (64 << 20, 64 << 20));
    let finished = sh("cat").run_with(Some(&input), &lim, None);
    assert!(!finished.stdout.truncated);
    assert!(finished.stdout.data == input, "the document came back byte for byte");
}

#[test]
fn a_child_that_writes_stderr_before_reading_stdin_does_not_deadlock() {
    let input = vec![b'y'; 10 << 20];
    let finished = sh("head -c 3000000 /dev/zero >&2; cat").run_with(
        Some(&input),
        &limits(|l| (l.stdout, l.stderr) = (16 << 20, 4 << 20)),
        None,
    );
    assert_eq!(finished.stderr.data.len(), 3_000_000);
    assert_eq!(finished.stdout.data.len(), input.len());
}

#[test]
fn a_child_that_floods_both_outputs_and_ignores_a_big_input() {
    let input = vec![b'z'; 64 << 20];
    let finished = sh("head -c 20000000 /dev/zero >&2 & head -c 20000000 /dev/zero; wait")
        .run_with(Some(&input), &Default::default(), None);
    assert_eq!(finished.status.expect("status"), WaitStatus::Exited { code: 0 });
    assert_eq!((finished.stdout.data.len(), finished.stderr.data.len()), (1 << 20, 1 << 20));
    assert!(finished.stdout.truncated && finished.stderr.truncated);
}
