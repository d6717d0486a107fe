//! A load client as applications use a rotated secret: a fresh login every few milliseconds with
//! whatever `AWSCURRENT` held when it last looked, and, as the AWS caching clients do, one
//! re-read of `AWSCURRENT` after a failed login, then one more try.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::crash_matrix::Credentials;
use crate::secrets_manager::MotoSecretsManager;

/// The pause between two rotations of one secret in the load tests. In service they are hours
/// apart; here they run back to back, and a warm rotation (tens of milliseconds) is quicker than
/// the client's login. A credential read from `AWSCURRENT` keeps working until two rotations
/// later (alternating users), so a pause longer than a login keeps the test about what the
/// function guarantees rather than about how fast the client logs in.
pub const ROTATION_PAUSE: Duration = Duration::from_millis(150);

/// What the client saw while the work ran.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Logins tried with the cached credentials.
    pub logins: u64,
    /// Logins that failed with the cached credentials and made the client re-read the secret.
    pub re_reads: u64,
    /// Logins that failed even with freshly read credentials: an outage for the application.
    pub failed_after_re_read: u64,
}

/// Runs `work` (rotations, say) while the client logs in every `interval` with the secret
/// `arn`'s credentials, and reports what the client saw.
pub async fn logins_during<W: Future>(
    moto: &MotoSecretsManager,
    arn: &str,
    credentials: &dyn Credentials,
    interval: Duration,
    work: W,
) -> (W::Output, LoadReport) {
    let done = AtomicBool::new(false);
    let work = async {
        let output = work.await;
        done.store(true, Ordering::Release);
        output
    };
    let client = async {
        let mut report = LoadReport::default();
        let mut cached = moto.value_at(arn, "AWSCURRENT").await;
        while !done.load(Ordering::Acquire) {
            report.logins += 1;
            let works = match &cached {
                Some(secret) => credentials.work(secret).await,
                None => false,
            };
            if !works {
                report.re_reads += 1;
                cached = moto.value_at(arn, "AWSCURRENT").await;
                let works_now = match &cached {
                    Some(secret) => credentials.work(secret).await,
                    None => false,
                };
                if !works_now {
                    report.failed_after_re_read += 1;
                }
            }
            tokio::time::sleep(interval).await;
        }
        report
    };
    tokio::join!(work, client)
}
