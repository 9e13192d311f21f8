use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::Offload;

fn multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// The one async worker is handed on while a job runs: a task spawned after the job started
/// still runs, and the job sees it. Inline, the job would wait for it in vain.
#[test]
fn a_job_leaves_its_worker_to_the_other_tasks() {
    let rt = multi_thread(1);
    let offload = Offload::new(1);
    let seen = rt.block_on(async {
        let (tx, rx) = mpsc::channel();
        let job = tokio::spawn(async move {
            offload
                .run(move || rx.recv_timeout(Duration::from_secs(10)).is_ok())
                .await
        });
        // Give the job its start on the one worker, then ask that worker for another task.
        tokio::time::sleep(Duration::from_millis(50)).await;
        tokio::spawn(async move { tx.send(()).unwrap() });
        job.await.unwrap()
    });
    assert!(seen, "the other task never ran while the job did");
}

/// However many tasks ask, no more than the pool's size of jobs run at once, and each runs.
#[test]
fn no_more_jobs_at_once_than_the_pool_has_threads() {
    let rt = multi_thread(4);
    let offload = Offload::new(2);
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let done: usize = rt.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (offload, running, most) =
                    (offload.clone(), Arc::clone(&running), Arc::clone(&most));
                tokio::spawn(async move {
                    offload
                        .run(|| {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(5));
                            running.fetch_sub(1, Ordering::SeqCst);
                            1
                        })
                        .await
                })
            })
            .collect();
        let mut done = 0;
        for t in tasks {
            done += t.await.unwrap();
        }
        done
    });
    assert_eq!(done, 16);
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 2, "{most} jobs ran at once with a pool of 2");
    assert!(most >= 1);
}

/// A current-thread runtime has no worker to hand on to: the job runs inline rather than panic.
#[tokio::test]
async fn on_a_current_thread_runtime_a_job_runs_inline() {
    assert_eq!(Offload::new(2).run(|| 7).await, 7);
    assert_eq!(Offload::inline().run(|| 8).await, 8);
}
