//! A share of one CPU for a server under test: the kernel's CFS bandwidth control, through a
//! cgroup of its own. On a machine too small for the generator to offer twice what a whole
//! server core can take (the `overload-2x` scenario on a 2-core VM), the servers run on a
//! fraction of their core instead, so the overload is the gateway's and not the generator's.
//!
//! The periods are as short as the kernel allows (a quota and a period are each at least 1 ms):
//! a throttled process waits at most the rest of a period, so a share of 0.5 (1 ms in 2 ms) adds
//! at most a millisecond to any latency, instead of the 50 ms the default 100 ms period could. The cgroup v1 `cpu` controller is used when it is
//! mounted (`/sys/fs/cgroup/cpu`), else cgroup v2's `cpu.max` (which needs the `cpu`
//! controller enabled in the root's `cgroup.subtree_control`). Needs root.

use std::path::{Path, PathBuf};

/// The kernel's shortest quota and period, in microseconds.
const MIN_US: u64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("a CPU share must be above 0.01 and at most the machine's CPUs ({0} given)")]
    Share(f64),
    #[error("no cgroup cpu controller to give a CPU share with (tried {0})")]
    NoController(String),
    #[error("cannot set a CPU share through {path} (root is needed)")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `(quota, period)` in microseconds for `share` of a CPU (above 0.01, at most every CPU): the
/// shortest the kernel takes, a 1 ms quota below one CPU and a 1 ms period from one CPU up.
pub fn quota_us(share: f64, cpus: usize) -> Result<(u64, u64), QuotaError> {
    if !share.is_finite() || share <= 0.01 || share > cpus as f64 {
        return Err(QuotaError::Share(share));
    }
    let period = if share < 1.0 {
        (MIN_US as f64 / share).round() as u64
    } else {
        MIN_US
    };
    Ok(((share * period as f64).round() as u64, period))
}

/// A process's cgroup with its CPU share; removed when dropped (after the process has exited).
#[derive(Debug)]
pub struct CpuShare {
    dir: PathBuf,
}

impl CpuShare {
    /// Moves process `pid` (every thread it has and will have) into a new cgroup limited to
    /// `share` of one CPU.
    pub fn apply(pid: u32, share: f64) -> Result<Self, QuotaError> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (quota, period) = quota_us(share, cpus)?;
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let v2 = Path::new("/sys/fs/cgroup");
        let name = format!("dccgw-load-{pid}");
        if v1.join("cpu.cfs_quota_us").is_file() {
            let dir = v1.join(name);
            make(&dir)?;
            let share = Self { dir };
            write(&share.dir.join("cpu.cfs_period_us"), &period.to_string())?;
            write(&share.dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
            write(&share.dir.join("cgroup.procs"), &pid.to_string())?;
            Ok(share)
        } else if v2.join("cgroup.controllers").is_file() {
            let dir = v2.join(name);
            make(&dir)?;
            let share = Self { dir };
            write(&share.dir.join("cpu.max"), &format!("{quota} {period}"))?;
            write(&share.dir.join("cgroup.procs"), &pid.to_string())?;
            Ok(share)
        } else {
            Err(QuotaError::NoController(format!(
                "{} and {}",
                v1.display(),
                v2.display()
            )))
        }
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        // Empty once its process has exited; a cgroup is removed with rmdir.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn make(dir: &Path) -> Result<(), QuotaError> {
    std::fs::create_dir_all(dir).map_err(|source| QuotaError::Write {
        path: dir.to_owned(),
        source,
    })
}

fn write(path: &Path, value: &str) -> Result<(), QuotaError> {
    std::fs::write(path, value).map_err(|source| QuotaError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_the_shortest_quota_and_period_the_kernel_takes_and_out_of_range_is_refused() {
        assert_eq!(quota_us(0.5, 2).unwrap(), (1_000, 2_000));
        assert_eq!(quota_us(0.25, 2).unwrap(), (1_000, 4_000));
        assert_eq!(quota_us(1.0, 2).unwrap(), (1_000, 1_000));
        assert_eq!(quota_us(1.5, 2).unwrap(), (1_500, 1_000));
        assert_eq!(quota_us(2.0, 2).unwrap(), (2_000, 1_000));
        for bad in [0.0, 0.01, -1.0, 2.5, f64::NAN, f64::INFINITY] {
            assert!(
                matches!(quota_us(bad, 2), Err(QuotaError::Share(_))),
                "{bad}"
            );
        }
    }
}
