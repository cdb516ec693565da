//! The race test's workers, canary stream and deadlock watchdog (with a thread dump).

use crate::common::*;
use moq_ffi::ffi::*;
use std::ffi::c_void;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use MoqResultCode::*;

use crate::ops::*;
use crate::world::*;

// ── Workers, canary, watchdog ───────────────────────────────────────────────────────────────

pub(crate) fn worker(index: usize) {
    let total: usize = OPS.iter().map(|op| op.1).sum();
    let w = world();
    if index == 0 && std::env::var_os("MOQ_RACE_HANG_SELFTEST").is_some() {
        // Checks the watchdog itself: this worker "hangs" in an operation.
        w.busy[index].store(now_ms(w), Relaxed);
        std::thread::sleep(Duration::from_secs(3600));
    }
    while !w.stop.load(Relaxed) {
        let mut roll = rand(total);
        let at = OPS
            .iter()
            .position(|op| {
                roll < op.1 || {
                    roll -= op.1;
                    false
                }
            })
            .unwrap();
        w.busy_op[index].store(at, Relaxed);
        w.busy[index].store(now_ms(w), Relaxed);
        let began = Instant::now();
        (OPS[at].2)();
        let micros = began.elapsed().as_micros() as u64;
        w.op_micros[at].0.fetch_add(micros, Relaxed);
        w.op_micros[at].1.fetch_max(micros, Relaxed);
        w.busy[index].store(0, Relaxed);
        w.op_counts[at].fetch_add(1, Relaxed);
    }
}

/// Marks the main thread busy with teardown step `what` (for the watchdog's report).
pub(crate) fn main_step(what: usize) {
    let w = world();
    let main = w.busy.len() - 1;
    w.busy_op[main].store(what, Relaxed);
    w.busy[main].store(now_ms(w), Relaxed);
}

pub(crate) const MAIN_STEPS: &[&str] = &[
    "joining workers",
    "draining the canary",
    "destroying subscribers",
    "destroying publishers",
    "destroying clients",
    "probing destroyed handles",
    "stopping the relay",
    "moq_shutdown",
];

pub(crate) unsafe extern "C" fn on_canary(_: *mut c_void, _: *const MoqObjectInfo, data: *const u8, len: usize) {
    let w = world();
    let n = &w.n;
    // SAFETY: the library passes `len` readable bytes.
    let data = unsafe { bytes(data, len) };
    match verify(data) {
        Ok((0, seq)) => {
            let last = n.canary_got.swap(seq + 1, Relaxed);
            if last != 0 && seq != last {
                n.canary_gaps.fetch_add(1, Relaxed);
                fail(format!("canary: object {seq} after {}", last - 1));
            }
        }
        other => fail(format!("canary: {other:?}")),
    }
    n.canary_at.store(now_ms(w), Relaxed);
}

/// Publishes the canary stream every 2 ms until told to stop.
pub(crate) fn canary(publisher: usize) {
    let w = world();
    let mut seq = 0u64;
    while !w.stop.load(Relaxed) {
        let data = payload(0, seq, seq as usize % 200);
        // SAFETY: `data` is valid for its length.
        let (code, message) = take(unsafe {
            moq_publish_data(
                publisher as *mut MoqPublisher,
                data.as_ptr(),
                data.len(),
                MOQ_DELIVERY_STREAM,
            )
        });
        if code != MOQ_OK {
            fail(format!("canary publish {seq}: {code:?} {message}"));
        }
        seq += 1;
        w.n.canary_sent.store(seq, Relaxed);
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Best-effort, time-bounded dump of every thread's stack.
pub(crate) fn dump_threads() {
    eprintln!("==== thread dump of process {}", std::process::id());
    let gdb = std::process::Command::new("gdb")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if gdb {
        #[cfg(target_os = "linux")]
        {
            extern "C" {
                fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
            }
            // SAFETY: PR_SET_PTRACER(PR_SET_PTRACER_ANY) only changes who may attach to us.
            unsafe { prctl(0x5961_6d61, -1 as std::ffi::c_long) };
        }
        let out = std::env::temp_dir().join(format!("moq-race-dump-{}.txt", std::process::id()));
        let file = std::fs::File::create(&out).ok();
        let mut command = std::process::Command::new("gdb");
        let pid = std::process::id().to_string();
        // Under valgrind the threads are valgrind's guests: gdb reaches them through vgdb.
        let valgrind = std::env::var("LD_PRELOAD").is_ok_and(|preload| preload.contains("vgpreload"));
        let target = format!("target remote | vgdb --pid={pid}");
        let exe = std::env::current_exe()
            .map(|exe| exe.display().to_string())
            .unwrap_or_default();
        let attach: Vec<&str> = match valgrind {
            true => vec![exe.as_str(), "-ex", target.as_str()],
            false => vec!["-p", pid.as_str()],
        };
        command.args(attach).args([
            "-batch",
            "-nx",
            "-ex",
            "set pagination off",
            "-ex",
            "thread apply all bt",
        ]);
        if let Some(file) = file {
            command.stdout(file.try_clone().unwrap()).stderr(file);
        }
        if let Ok(mut child) = command.stdin(std::process::Stdio::null()).spawn() {
            let deadline = Instant::now() + Duration::from_secs(90);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("{}", std::fs::read_to_string(&out).unwrap_or_default());
            return;
        }
    }
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let read = |name: &str| std::fs::read_to_string(task.path().join(name)).unwrap_or_default();
        eprintln!(
            "-- task {:?} {} wchan={}\n{}{}",
            task.file_name(),
            read("comm").trim(),
            read("wchan"),
            read("stat"),
            read("stack")
        );
    }
}

/// Fails the run (after a thread dump) when a thread stays in one call, or the canary gets
/// nothing, for `stall`; the whole run is bounded by `limit`.
pub(crate) fn watchdog(stall: Duration, limit: Duration) {
    let w = world();
    let stall_ms = stall.as_millis() as u64;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let now = now_ms(w);
        let mut stuck = Vec::new();
        for (index, since) in w.busy.iter().enumerate() {
            let since = since.load(Relaxed);
            if since != 0 && now - since > stall_ms {
                let main = index == w.busy.len() - 1;
                let op = w.busy_op[index].load(Relaxed);
                let what = if main { MAIN_STEPS[op] } else { OPS[op].0 };
                stuck.push(format!(
                    "{} in \"{what}\" for {} ms",
                    if main {
                        "main thread".into()
                    } else {
                        format!("worker {index}")
                    },
                    now - since
                ));
            }
        }
        let canary = w.n.canary_at.load(Relaxed);
        if canary != 0 && !w.stop.load(Relaxed) && now - canary > stall_ms {
            stuck.push(format!(
                "canary subscription silent for {} ms (callback thread stuck?)",
                now - canary
            ));
        }
        if stuck.is_empty() && now < limit.as_millis() as u64 {
            continue;
        }
        // The main thread waits for the dump (it may finish meanwhile) and then fails too.
        w.n.hang.store(true, Relaxed);
        fail(format!("deadlock or hang: {stuck:?} (run {now} ms, limit {limit:?})"));
        eprintln!("RACE TEST FAILED: deadlock or hang: {stuck:?} (run {now} ms, limit {limit:?})");
        dump_threads();
        std::process::exit(1);
    }
}

pub(crate) unsafe extern "C" fn on_canary_data(user_data: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: forwarded; `on_canary` ignores `info`.
    unsafe { on_canary(user_data, &MoqObjectInfo::default(), data, len) }
}

/// This process's threads named like the library's.
pub(crate) fn library_threads() -> Vec<String> {
    let names = std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten();
    let names = names.filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok());
    names
        .map(|name| name.trim().to_string())
        .filter(|n| n.starts_with("moq-ffi") || n.starts_with("tokio"))
        .collect()
}
