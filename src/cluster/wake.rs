//! The followers' wake-up: one connection per instance that `LISTEN`s on the change log's
//! channel and wakes the follower when a batch commits. It is only a wake-up: the follower polls
//! as well, and reads the batches themselves from the log, so a notification lost with a
//! connection loses nothing. A dropped connection is made again after a pause, and the follower
//! woken then (it may have missed batches meanwhile).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use super::log::CHANNEL;
use super::Cluster;

/// The pause before a lost listening connection is made again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// A running listener; stopped when dropped.
pub struct Wake {
    woken: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Wake {
    /// Waits for the next notification (or reconnection) since the last wait.
    pub async fn notified(&self) {
        self.woken.notified().await;
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Cluster {
    /// Starts listening for committed change batches.
    pub fn listen(&self) -> Wake {
        let woken = Arc::new(Notify::new());
        let config = self.config.clone();
        let task = tokio::spawn({
            let woken = Arc::clone(&woken);
            async move {
                loop {
                    if let Err(e) = listen_once(&config, &woken).await {
                        tracing::warn!(error = %e, "Change-log notifications lost; listening again shortly.");
                    }
                    tokio::time::sleep(RECONNECT_AFTER).await;
                }
            }
        });
        Wake { woken, task }
    }
}

/// Listens on one connection until it closes.
async fn listen_once(
    config: &tokio_postgres::Config,
    woken: &Arc<Notify>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn({
        let woken = Arc::clone(woken);
        async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => woken.notify_one(),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Batches may have committed while no connection listened.
    woken.notify_one();
    let ended = driver.await;
    drop(client);
    match ended {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
