//! Process trees: the processes a command of ours started, read with `ps`
//! (Linux and macOS), so that stopping the command stops all of them.

use std::process::Command;

/// Every process's `(pid, parent pid)`, read with `ps`; empty when `ps`
/// cannot run.
/// `ps` itself, which lists itself, is left out: it is gone once read.
fn parents() -> Vec<(u32, u32)> {
    let ps = Command::new("ps")
        .args(["-A", "-o", "pid=", "-o", "ppid="])
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(ps) = ps else {
        return Vec::new();
    };
    let own = ps.id();
    let Ok(out) = ps.wait_with_output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().map(str::parse::<u32>);
            Some((fields.next()?.ok()?, fields.next()?.ok()?))
        })
        .filter(|(pid, _)| *pid != own)
        .collect()
}

/// The processes below `root` in `(pid, ppid)` pairs, nearest first.
pub fn descendants(root: u32, pairs: &[(u32, u32)]) -> Vec<u32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            pairs
                .iter()
                .filter(|(pid, ppid)| *ppid == parent && !found.contains(pid))
                .map(|(pid, _)| *pid)
                .collect::<Vec<_>>(),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Kills (SIGKILL) every process below `root` (a pid of ours, or a child
/// of ours not yet reaped), and `root` too when `and_root`. Each is
/// stopped first and the tree read again, so that none forks a process
/// that outlives it.
pub fn kill_tree(root: u32, and_root: bool) {
    let signal = |pid: u32, signal: i32| {
        if let Ok(pid) = libc::pid_t::try_from(pid)
            && pid > 0
        {
            // SAFETY: kill(2) of a process below ours, read just now and
            // stopped since (so its pid cannot have been taken again).
            unsafe { libc::kill(pid, signal) };
        }
    };
    let mut stopped: Vec<u32> = Vec::new();
    if and_root {
        signal(root, libc::SIGSTOP);
        stopped.push(root);
    }
    for _ in 0..3 {
        let new: Vec<u32> = descendants(root, &parents())
            .into_iter()
            .filter(|p| !stopped.contains(p))
            .collect();
        if new.is_empty() {
            break;
        }
        for &pid in &new {
            signal(pid, libc::SIGSTOP);
        }
        stopped.extend(new);
    }
    for &pid in &stopped {
        signal(pid, libc::SIGKILL);
    }
}

/// Makes this process the one that an orphan below it is given to (Linux's
/// child subreaper), so that a job a command detached (`( job & )`, a
/// double fork) is still below this process, and [`kill_tree`] of it
/// reaches it. Elsewhere nothing changes.
pub fn adopt_orphans() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(2) with PR_SET_CHILD_SUBREAPER sets one flag of this
    // process; it takes no pointer.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_are_the_whole_subtree_and_nothing_else() {
        let pairs = [(10, 1), (11, 10), (12, 11), (13, 10), (20, 1), (21, 20)];
        assert_eq!(descendants(10, &pairs), [11, 13, 12]);
        assert!(descendants(12, &pairs).is_empty());
    }

    #[test]
    fn a_childs_whole_tree_is_killed() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let mut tree = descendants(child.id(), &parents());
        while tree.len() < 2 && started.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            tree = descendants(child.id(), &parents());
        }
        assert_eq!(tree.len(), 2, "the shell's two sleeps: {tree:?}");
        kill_tree(child.id(), true);
        child.wait().unwrap();
        // Each sleep is gone (reaped by whoever adopted it), or a zombie
        // until then; a pid taken again by then runs something else.
        let sleeping = |p: u32| {
            let cmd = Command::new("ps")
                .args(["-o", "stat=,args=", "-p", &p.to_string()])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            cmd.contains("sleep 30") && !cmd.trim_start().starts_with('Z')
        };
        let started = std::time::Instant::now();
        while tree.iter().any(|&p| sleeping(p)) && started.elapsed().as_secs() < 5 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!tree.iter().any(|&p| sleeping(p)), "{tree:?}");
    }
}
