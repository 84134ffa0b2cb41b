//! Where a run ran, as a record it leaves in the backup directory (the
//! backup lock, a rehearsal's directory) says it, and what the pid such a
//! record names tells here.
//!
//! A pid names a process only in the pid namespace of the boot it was
//! taken in: after a restart it names another process or none, on another
//! host it names nothing here, and in a container on this boot (its own
//! pid namespace) it names another process than ours of that number. A
//! record therefore says the host's name, its machine's id (one derived
//! from `/etc/machine-id`, [`record_id`]), the kernel's id of the boot and
//! the pid namespace, a line each:
//!
//! ```text
//! host build-7
//! machine 3d12…
//! boot 4f0c…
//! pid-namespace 4026531836
//! ```
//!
//! A host name alone does not tell a machine (`ubuntu`, `raspberrypi`, a
//! compose file's fixed `hostname:`): a run of another boot is taken for
//! one a restart of this machine stopped only where its host name and
//! machine id are this machine's. Older versions wrote no machine id,
//! `boot ID` alone or `host NAME` where the kernel tells no boot; those
//! read as the part they say.

/// The host, machine, boot and pid namespace a run ran in; each absent
/// where it could not be read, or a record does not say it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Machine {
    host: Option<String>,
    machine_id: Option<String>,
    boot: Option<String>,
    pid_namespace: Option<u64>,
}

/// What the run a record names is, judged here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Its process exists: it may still run.
    Alive,
    /// It ran here (this boot, this pid namespace), and its process is gone.
    Killed,
    /// It ran on this machine (its host name and machine id) before it
    /// last booted (a crash, a power loss, a reboot stopped it): gone,
    /// whatever its pid names now.
    StoppedByRestart,
    /// It ran on another host, or in another pid namespace on this boot
    /// (a container), or its record does not tell it from this machine (no
    /// machine id): its pid says nothing here, and it may still run.
    Elsewhere,
}

impl Run {
    /// What a run of this boot and pid namespace is, by its pid: a record
    /// that says no machine (an older version's) is read so too.
    pub fn by_pid(pid: u32) -> Run {
        Run::alive_or_killed(pid_exists(pid))
    }

    fn alive_or_killed(alive: bool) -> Run {
        if alive { Run::Alive } else { Run::Killed }
    }
}

impl Machine {
    /// This host, this machine, this boot and this process's pid namespace.
    pub fn here() -> Machine {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok();
        let namespace = std::fs::read_link("/proc/self/ns/pid").ok();
        Machine {
            host: host_name(),
            machine_id: machine_id(),
            boot: boot.map(|b| b.trim().to_owned()).filter(|b| !b.is_empty()),
            pid_namespace: namespace.and_then(|n| {
                let n = n.to_str()?.strip_prefix("pid:[")?.strip_suffix(']')?;
                n.parse().ok()
            }),
        }
    }

    /// A record's text, as [`Machine::record`] writes it (or an older
    /// version did); a line of another shape says nothing.
    pub fn read(text: &str) -> Machine {
        let mut machine = Machine::default();
        for line in text.lines() {
            match line.trim().split_once(' ') {
                Some(("host", name)) => machine.host = Some(name.to_owned()),
                Some(("machine", id)) => machine.machine_id = Some(id.to_owned()),
                Some(("boot", id)) => machine.boot = Some(id.to_owned()),
                Some(("pid-namespace", n)) => machine.pid_namespace = n.parse().ok(),
                _ => {}
            }
        }
        machine
    }

    /// The record's text: a line for each of host, machine, boot and pid
    /// namespace known.
    pub fn record(&self) -> String {
        let host = self.host.as_ref().map(|h| format!("host {h}"));
        let id = self.machine_id.as_ref().map(|m| format!("machine {m}"));
        let boot = self.boot.as_ref().map(|b| format!("boot {b}"));
        let namespace = self.pid_namespace.map(|n| format!("pid-namespace {n}"));
        { [host, id, boot, namespace].into_iter().flatten() }
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The host's name, where it prints as itself (a record is a file
    /// anyone able to write the backup directory may have written).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref().filter(|h| {
            !h.is_empty()
                && h.len() <= 253
                && d1_core::names::is_printable(h)
                && !h.contains(['`', '\''])
        })
    }

    /// Whether the record says a machine id.
    pub fn says_machine_id(&self) -> bool {
        self.machine_id.is_some()
    }

    /// What the run with `pid` that recorded this is, judged here.
    pub fn run(&self, pid: u32) -> Run {
        self.run_seen_from(&Machine::here(), pid_exists(pid))
    }

    /// What the process `pid` that started at `start` ([`start_of`]) of
    /// the run that recorded this is, judged here ([`is_running`]).
    pub fn process(&self, pid: u32, start: Option<u64>) -> Run {
        self.run_seen_from(&Machine::here(), is_running(pid, start))
    }

    /// What the run that recorded this is, seen from `here`, where a
    /// process of its pid exists or not (`alive`).
    fn run_seen_from(&self, here: &Machine, alive: bool) -> Run {
        let by_pid = Run::alive_or_killed(alive);
        let same_host = self.host.is_some() && self.host == here.host;
        // Of another boot, only a record that says this host name and this
        // machine id is this machine's: a host name alone is shared by
        // many machines, and one taken for this one would have its live
        // run's directory removed.
        let same_machine =
            same_host && self.machine_id.is_some() && self.machine_id == here.machine_id;
        match (&self.boot, &here.boot) {
            (Some(then), Some(now)) if then == now => {
                match (self.pid_namespace, here.pid_namespace) {
                    (Some(then), Some(now)) if then != now => Run::Elsewhere,
                    (Some(_), Some(_)) => by_pid,
                    // An older record, of this boot alone: read as it was.
                    _ if self.host.is_none() || same_host => by_pid,
                    _ => Run::Elsewhere,
                }
            }
            (Some(_), Some(_)) if same_machine => Run::StoppedByRestart,
            (Some(_), Some(_)) => Run::Elsewhere,
            // No boot to compare (a kernel that tells none): the machine,
            // or, where neither says a machine id, the host.
            _ if same_machine => by_pid,
            _ if same_host && self.machine_id.is_none() && here.machine_id.is_none() => by_pid,
            _ => Run::Elsewhere,
        }
    }
}

/// The fields of `/proc/PID/stat` after the command's name, from its state
/// on (`STATE PPID … STARTTIME …`); `None` where it cannot be read.
fn stat_after_comm(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `PID (COMM) STATE PPID …`: COMM may hold spaces and `)`.
    let (_, after) = stat.rsplit_once(')')?;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// When the process `pid` of this pid namespace started, in clock ticks
/// since this machine booted (`/proc/PID/stat`'s `starttime`): with its
/// pid, it names one process of this boot, not another given that pid
/// since. `None` where it cannot be read.
pub fn start_of(pid: u32) -> Option<u64> {
    stat_after_comm(pid)?.get(19)?.parse().ok()
}

/// Whether the process a record names runs here: a process of its pid
/// exists, is not a zombie (ended, not yet reaped), and started at `start`
/// where the record says when ([`start_of`]) and `/proc` tells it; a
/// process of that pid started at another time is another one.
pub fn is_running(pid: u32, start: Option<u64>) -> bool {
    if !pid_exists(pid) {
        return false;
    }
    let Some(stat) = stat_after_comm(pid) else {
        return true;
    };
    let zombie = stat.first().is_some_and(|state| state == "Z");
    let now = stat.get(19).and_then(|s| s.parse::<u64>().ok());
    !zombie && (start.is_none() || now.is_none() || start == now)
}

/// Whether the process `pid` runs wrangler: on Linux, its command line
/// (`/proc/PID/cmdline`, its program or the script it runs) names node or
/// wrangler; one that cannot be read is not. Elsewhere, where no command
/// line is read, any process is.
pub fn is_wrangler(pid: u32) -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    { cmdline.split(|b| *b == 0).take(2) }
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .any(|arg| {
            let name = arg.rsplit('/').next().unwrap_or_default();
            name == "node" || name == "nodejs" || name.starts_with("wrangler")
        })
}

/// Whether the process `pid` of this pid namespace is an ancestor of this
/// one (its parent, its parent's parent, …), by the parent each process's
/// `/proc/PID/stat` names: `false` where that cannot be read.
pub fn is_ancestor(pid: u32) -> bool {
    let parent = |of: u32| -> Option<u32> { stat_after_comm(of)?.get(1)?.parse().ok() };
    let mut at = std::process::id();
    // A chain is far shorter than this; a loop read mid-change ends too.
    for _ in 0..4096 {
        match parent(at) {
            Some(p) if p == pid && p != 0 => return true,
            Some(p) if p > 1 => at = p,
            _ => return false,
        }
    }
    false
}

/// Whether a process with this pid exists here (it may belong to someone
/// else, or be this one).
pub fn pid_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks for the process.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This machine's id, as systemd (`/etc/machine-id`) or D-Bus
/// (`/var/lib/dbus/machine-id`) keeps it (set once when the system is
/// installed; none in many containers), as a record says it: not itself,
/// which systemd asks be kept confidential, but an id derived from it for
/// this tool alone ([`RECORD_ID`]), as `sd_id128_get_machine_app_specific`
/// derives one.
fn machine_id() -> Option<String> {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .into_iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .map(|id| id.trim().to_owned())
        .find(|id| is_machine_id(id))
        .map(|id| record_id(&id))
}

/// What the tool's records derive from a machine id.
pub const RECORD_ID: &str = "qbtime xtask: the machine a run ran on";

/// The id a record says for the machine whose id is `machine_id`: the
/// first half of HMAC-SHA256 keyed by it, of [`RECORD_ID`], as hex.
pub fn record_id(machine_id: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(machine_id.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(RECORD_ID.as_bytes());
    d1_core::names::hex(&mac.finalize().into_bytes()[..16])
}

/// 32 hex digits, a machine id's form.
fn is_machine_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// This host's name, as gethostname(2) tells it.
fn host_name() -> Option<String> {
    let mut name = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let ok = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0;
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let name = String::from_utf8_lossy(&name[..end]).trim().to_owned();
    (ok && !name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(host: &str, boot: &str, namespace: u64) -> Machine {
        Machine::read(&format!(
            "host {host}\nmachine m-{host}\nboot {boot}\npid-namespace {namespace}"
        ))
    }

    /// A run's pid is asked only of one of this boot and pid namespace: one
    /// of this host before its restart is gone whatever its pid names now;
    /// another host's, or a container's on this boot, is told as elsewhere.
    #[test]
    fn a_runs_pid_is_asked_only_in_its_own_boot_and_pid_namespace() {
        let here = at("vm", "b2", 7);
        for alive in [true, false] {
            let by_pid = Run::alive_or_killed(alive);
            let seen = |m: &Machine| m.run_seen_from(&here, alive);
            assert_eq!(seen(&at("vm", "b2", 7)), by_pid);
            // A host renamed under a live run is still this boot's.
            assert_eq!(seen(&at("renamed", "b2", 7)), by_pid);
            assert_eq!(seen(&at("vm", "b1", 7)), Run::StoppedByRestart);
            assert_eq!(seen(&at("ci-7", "b1", 7)), Run::Elsewhere);
            assert_eq!(seen(&at("vm", "b2", 9)), Run::Elsewhere);
            assert_eq!(seen(&at("container", "b2", 9)), Run::Elsewhere);
            // Older records: a boot alone, a host alone.
            assert_eq!(seen(&Machine::read("boot b2")), by_pid);
            assert_eq!(seen(&Machine::read("boot b1")), Run::Elsewhere);
            // A host alone does not tell this machine from a namesake.
            assert_eq!(seen(&Machine::read("host vm")), Run::Elsewhere);
            assert_eq!(seen(&Machine::read("host vm\nmachine m-vm")), by_pid);
            assert_eq!(seen(&Machine::read("host ci-7")), Run::Elsewhere);
            assert_eq!(seen(&Machine::read("ci-runner-7 0f3c")), Run::Elsewhere);
            // Another machine of the same host name (`ubuntu`, `raspberrypi`,
            // a compose file's fixed `hostname:`), booted otherwise: its
            // machine id tells it apart; a record without one (an older
            // version's, a container with no machine id) is not taken for
            // this machine's.
            let twin = "host vm\nmachine m-twin\nboot b1\npid-namespace 7";
            assert_eq!(seen(&Machine::read(twin)), Run::Elsewhere);
            let unsaid = "host vm\nboot b1\npid-namespace 7";
            assert_eq!(seen(&Machine::read(unsaid)), Run::Elsewhere);
            let no_boot = Machine {
                boot: None,
                ..here.clone()
            };
            let seen_unbooted = |m: &str| Machine::read(m).run_seen_from(&no_boot, alive);
            assert_eq!(seen_unbooted("host vm\nmachine m-vm"), by_pid);
            assert_eq!(seen_unbooted("host vm\nmachine m-twin"), Run::Elsewhere);
            assert_eq!(seen_unbooted("host vm"), Run::Elsewhere);
            let nothing_but_hosts = Machine {
                machine_id: None,
                ..no_boot.clone()
            };
            let host_alone = Machine::read("host vm").run_seen_from(&nothing_but_hosts, alive);
            assert_eq!(host_alone, by_pid);
        }
    }

    #[test]
    fn a_record_reads_back_as_written_and_a_hostile_host_is_not_repeated() {
        let here = Machine::here();
        assert_eq!(Machine::read(&here.record()), here);
        // The machine id is kept to this machine: a record says an id
        // derived from it, never it.
        let id = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
        let id = id.trim();
        if is_machine_id(id) {
            assert!(
                here.record()
                    .contains(&format!("machine {}", record_id(id)))
            );
            assert!(!here.record().contains(id), "{}", here.record());
        }
        assert_eq!(here.run(std::process::id()), Run::Alive);
        // IC: a record whose pid is alive but names a process started at
        // another time is of another process.
        let me = std::process::id();
        let start = start_of(me).expect("this process's start");
        assert_eq!(here.process(me, Some(start)), Run::Alive);
        assert_eq!(here.process(me, Some(start + 1)), Run::Killed);
        assert_eq!(here.process(me, None), Run::Alive);
        assert_eq!(here.run(u32::MAX), Run::Killed);
        for hostile in ["a\u{1b}[2Jb", "\u{202e}tsoh", "a`rm -rf x`", "it's"] {
            let m = Machine::read(&format!("host {hostile}"));
            assert_eq!(m.host(), None, "{hostile:?}");
        }
        assert_eq!(Machine::read("host ci-7").host(), Some("ci-7"));
    }
}
