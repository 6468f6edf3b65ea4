//! Memory and CPU limits through Linux control groups.
//!
//! Each run gets its own cgroup: with cgroup v2 where the memory and cpu controllers can be
//! enabled (`/sys/fs/cgroup/sealroom-<name>`), otherwise with the v1 `memory` and `cpu`
//! hierarchies (`/sys/fs/cgroup/{memory,cpu}/sealroom/<name>`). The sandbox's first process
//! moves itself into the group before it `exec`s the sandbox (see [`Cgroup::enter_script`]), so
//! everything it starts is inside. Reaching the memory limit gets the kernel's OOM killer, which
//! the runner reports as [`super::Ending::MemoryLimit`]; the CPU limit is a CFS quota of
//! `vcpus` CPUs per period.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Limits, Result, SandboxError};

const V1_ROOT: &str = "/sys/fs/cgroup";
const V2_ROOTS: [&str; 2] = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];
const CFS_PERIOD_US: u64 = 100_000;

/// The control group(s) of one run.
#[derive(Debug)]
pub struct Cgroup {
    mechanism: Mechanism,
}

#[derive(Debug)]
enum Mechanism {
    V2 {
        path: PathBuf,
    },
    V1 {
        memory: PathBuf,
        cpu: Option<PathBuf>,
    },
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(|e| {
        SandboxError::Limits(format!("cannot write {value:?} to {}: {e}", path.display()))
    })
}

impl Cgroup {
    /// Creates the run's cgroup with `limits`. Fails if no mechanism can enforce them.
    pub fn create(name: &str, limits: &Limits) -> Result<Cgroup> {
        let mut reasons = Vec::new();
        match Self::create_v2(name, limits) {
            Ok(cg) => return Ok(cg),
            Err(e) => reasons.push(format!("cgroup v2: {e}")),
        }
        match Self::create_v1(name, limits) {
            Ok(cg) => return Ok(cg),
            Err(e) => reasons.push(format!("cgroup v1: {e}")),
        }
        Err(SandboxError::Limits(format!(
            "no writable memory cgroup (run the agent as root or with a delegated cgroup v2 subtree): {}",
            reasons.join("; ")
        )))
    }

    fn create_v2(name: &str, limits: &Limits) -> Result<Cgroup> {
        let root = V2_ROOTS
            .iter()
            .map(Path::new)
            .find(|r| r.join("cgroup.controllers").is_file())
            .ok_or_else(|| SandboxError::Limits("no cgroup2 hierarchy".into()))?;
        let controllers = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return Err(SandboxError::Limits(format!(
                "the memory controller is not available in {}",
                root.display()
            )));
        }
        let subtree = fs::read_to_string(root.join("cgroup.subtree_control")).unwrap_or_default();
        if !subtree.split_whitespace().any(|c| c == "memory") {
            write(&root.join("cgroup.subtree_control"), "+memory")?;
        }
        let cpu = controllers.split_whitespace().any(|c| c == "cpu");
        if cpu && !subtree.split_whitespace().any(|c| c == "cpu") {
            let _ = write(&root.join("cgroup.subtree_control"), "+cpu");
        }
        let path = root.join(format!("sealroom-{name}"));
        fs::create_dir(&path)
            .map_err(|e| SandboxError::Limits(format!("cannot create {}: {e}", path.display())))?;
        let cg = Cgroup {
            mechanism: Mechanism::V2 { path: path.clone() },
        };
        write(&path.join("memory.max"), &limits.memory_bytes.to_string())?;
        let _ = write(&path.join("memory.swap.max"), "0");
        if path.join("cpu.max").exists() {
            write(
                &path.join("cpu.max"),
                &format!(
                    "{} {CFS_PERIOD_US}",
                    u64::from(limits.vcpus) * CFS_PERIOD_US
                ),
            )?;
        }
        Ok(cg)
    }

    fn create_v1(name: &str, limits: &Limits) -> Result<Cgroup> {
        let mem_root = Path::new(V1_ROOT).join("memory");
        if !mem_root.join("memory.limit_in_bytes").exists() {
            return Err(SandboxError::Limits("no v1 memory hierarchy".into()));
        }
        let memory = mem_root.join("sealroom").join(name);
        fs::create_dir_all(&memory).map_err(|e| {
            SandboxError::Limits(format!("cannot create {}: {e}", memory.display()))
        })?;
        let cpu_root = Path::new(V1_ROOT).join("cpu");
        let cpu = if cpu_root.join("cpu.cfs_quota_us").exists() {
            let p = cpu_root.join("sealroom").join(name);
            fs::create_dir_all(&p).ok().map(|()| p)
        } else {
            None
        };
        let cg = Cgroup {
            mechanism: Mechanism::V1 {
                memory: memory.clone(),
                cpu: cpu.clone(),
            },
        };
        write(
            &memory.join("memory.limit_in_bytes"),
            &limits.memory_bytes.to_string(),
        )?;
        // Without this, the limit could be dodged into swap where swap exists.
        let _ = fs::write(
            memory.join("memory.memsw.limit_in_bytes"),
            limits.memory_bytes.to_string(),
        );
        let _ = fs::write(memory.join("memory.swappiness"), "0");
        if let Some(cpu) = &cpu {
            write(&cpu.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
            write(
                &cpu.join("cpu.cfs_quota_us"),
                &(u64::from(limits.vcpus) * CFS_PERIOD_US).to_string(),
            )?;
        }
        Ok(cg)
    }

    fn dirs(&self) -> Vec<&Path> {
        match &self.mechanism {
            Mechanism::V2 { path } => vec![path],
            Mechanism::V1 { memory, cpu } => {
                let mut v = vec![memory.as_path()];
                if let Some(c) = cpu {
                    v.push(c);
                }
                v
            }
        }
    }

    /// A `sh -c` script that moves the shell into this cgroup, then `exec`s its arguments.
    pub fn enter_script(&self) -> String {
        let mut s = String::new();
        for d in self.dirs() {
            s.push_str(&format!(
                "echo $$ > '{}' && ",
                d.join("cgroup.procs").display()
            ));
        }
        s.push_str("exec \"$@\"");
        s
    }

    fn pids(&self) -> Vec<String> {
        let procs = self.dirs()[0].join("cgroup.procs");
        fs::read_to_string(procs)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// SIGKILLs every process still in the group.
    pub fn kill_all(&self) {
        if let Mechanism::V2 { path } = &self.mechanism {
            if fs::write(path.join("cgroup.kill"), "1").is_ok() {
                return;
            }
        }
        for _ in 0..3 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .output();
        }
    }

    /// Whether the kernel's OOM killer killed a process of the group.
    pub fn oom_killed(&self) -> bool {
        let (file, key) = match &self.mechanism {
            Mechanism::V2 { path } => (path.join("memory.events"), "oom_kill"),
            Mechanism::V1 { memory, .. } => (memory.join("memory.oom_control"), "oom_kill"),
        };
        fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix(key))
            .filter_map(|v| v.trim().parse::<u64>().ok())
            .any(|n| n > 0)
    }

    /// The group's peak memory use, where the kernel reports it.
    pub fn peak_memory(&self) -> Option<u64> {
        let file = match &self.mechanism {
            Mechanism::V2 { path } => path.join("memory.peak"),
            Mechanism::V1 { memory, .. } => memory.join("memory.max_usage_in_bytes"),
        };
        fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// Removes the group (after its processes are gone).
    pub fn remove(&self) {
        for d in self.dirs() {
            for _ in 0..20 {
                if fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                self.kill_all();
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        self.remove();
    }
}
