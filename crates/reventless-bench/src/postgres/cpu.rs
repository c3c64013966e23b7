//! CPU time per command on this machine, split between the client side
//! (this process and the peers' processes it waited for) and the server
//! (the postmaster and its children, live and exited), when the server runs
//! here: on two cores, which side saturates tells where a line's time goes.
use std::path::Path;

/// Clock ticks of a process: (utime + stime, cutime + cstime), from `/proc/<pid>/stat`.
fn ticks(stat: &Path) -> Option<(u64, u64, u32)> {
    let text = std::fs::read_to_string(stat).ok()?;
    // Fields after the command name, which may hold spaces: state, ppid, …
    let fields: Vec<&str> = text.get(text.rfind(')')? + 2..)?.split_whitespace().collect();
    let number = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    let own = number(11)? + number(12)?;
    let children = number(13)? + number(14)?;
    let parent = u32::try_from(number(1)?).ok()?;
    Some((own, children, parent))
}

/// Ticks of this process and of the children it waited for.
pub fn client_ticks() -> Option<u64> {
    let (own, children, _) = ticks(Path::new("/proc/self/stat"))?;
    Some(own + children)
}

/// The postmaster of the backend `backend_pid`, when it runs on this machine.
pub fn postmaster_of(backend_pid: i32) -> Option<u32> {
    ticks(&Path::new("/proc").join(backend_pid.to_string()).join("stat")).map(|(_, _, parent)| parent)
}

/// Ticks of the postmaster, its exited children and its live ones.
pub fn server_ticks(postmaster: u32) -> Option<u64> {
    let (own, exited, _) = ticks(&Path::new("/proc").join(postmaster.to_string()).join("stat"))?;
    let live: u64 = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_str().is_some_and(|name| name.bytes().all(|b| b.is_ascii_digit())))
        .filter_map(|entry| ticks(&entry.path().join("stat")))
        .filter(|(_, _, parent)| *parent == postmaster)
        .map(|(own, _, _)| own)
        .sum();
    Some(own + exited + live)
}

/// Microseconds per clock tick (`getconf CLK_TCK`, 100 on Linux by default).
pub fn micros_per_tick() -> f64 {
    let ticks_per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0);
    1_000_000.0 / ticks_per_second
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_counted_and_its_parent_found() {
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(client_ticks().is_some_and(|t| t > 0));
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(postmaster_of(me).is_some_and(|parent| parent > 0));
        assert!(micros_per_tick() > 0.0);
    }
}
