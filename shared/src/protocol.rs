//! The rotation protocol: the staging-label state machine every rotation function shares.
//!
//! Secrets Manager invokes the function four times per rotation, after creating a value-less
//! version labelled `AWSPENDING` whose VersionId is the event's `ClientRequestToken`:
//!
//! 1. **createSecret** writes the new credential as the pending version's value. This is the
//!    write-ahead record: it happens before anything changes at the target, so a crash later in
//!    the rotation can always be finished with the same credential.
//! 2. **setSecret** makes the target accept the pending credential.
//! 3. **testSecret** proves it works.
//! 4. **finishSecret** moves `AWSCURRENT` to the pending version (the service moves
//!    `AWSPREVIOUS` along), lets the target clean up, and removes `AWSPENDING`, so the next
//!    rotation can start.
//!
//! Any invocation may be a retry: Secrets Manager retries whole rotations, Lambda retries
//! invocations, and a process can die between two side effects. Each step therefore looks at
//! what exists and does only what is missing; running a step twice ends in the same state as
//! running it once.
//!
//! The protocol trusts no version's content: the target proves, with the credential the secret
//! holds, that it may act on what a version names before it acts (see [`crate::target`], "The
//! trust rule every target follows"). A failed testSecret rolls back only when the target
//! rejected the pending credential; a slow or unreachable target leaves everything for a retry.
//! Values read for one rotation are dropped when it ends or another begins ([`VersionCache`]).

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::error::RotationError;
use crate::event::{RotationEvent, Step};
use crate::metrics::StepMetrics;
use crate::store::{SecretDescription, SecretStore, StagingLabel, StoreErrorKind};
use crate::target::{RollBack, Target, TargetError, TargetErrorKind};
use crate::versions::{SecretVersions, VersionCache};

/// What a step did, as logged in its `outcome` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// The token is already `AWSCURRENT`: the rotation finished earlier; nothing to do.
    AlreadyCurrent,
    /// finishSecret found the token current but still labelled `AWSPENDING` (a crash between
    /// its two label updates) and removed the label.
    PendingLabelRemoved,
    /// createSecret found this rotation's pending value already written.
    PendingAlreadyStored,
    /// createSecret wrote the pending value.
    PendingStored,
    Applied,
    Verified,
    Finished,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::AlreadyCurrent => "already_current",
            StepOutcome::PendingLabelRemoved => "pending_label_removed",
            StepOutcome::PendingAlreadyStored => "pending_already_stored",
            StepOutcome::PendingStored => "pending_stored",
            StepOutcome::Applied => "applied",
            StepOutcome::Verified => "verified",
            StepOutcome::Finished => "finished",
        }
    }
}

/// A rotation function: the protocol bound to one Secrets Manager client and one target.
pub struct Rotation<T> {
    store: Arc<dyn SecretStore>,
    target: T,
    /// Version values read by earlier steps of this process (see [`VersionCache`]).
    cache: VersionCache,
    /// One metric record per step, when the function writes them (Lambda always does).
    metrics: Option<StepMetrics>,
}

impl<T: Target> Rotation<T> {
    pub fn new(store: Arc<dyn SecretStore>, target: T) -> Self {
        Rotation {
            store,
            target,
            cache: VersionCache::default(),
            metrics: None,
        }
    }

    /// Also writes one embedded-metric-format record per step ([`crate::metrics`]).
    pub fn with_metrics(mut self, metrics: StepMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The values this process keeps for the rotation in progress: what the tests of the
    /// "no other secret's plaintext stays" rule inspect.
    pub fn cache(&self) -> &VersionCache {
        &self.cache
    }

    /// Handles one Lambda invocation: validates the payload, runs the step, and logs one line
    /// with the step, the secret, the version, the outcome and the duration.
    pub async fn handle(&self, payload: &Value) -> Result<StepOutcome, RotationError> {
        self.handle_until(payload, None).await
    }

    /// [`Rotation::handle`], giving up at `deadline` (Lambda's, less a margin) so the function
    /// reports a classified error instead of being killed mid-step. Stopping between two side
    /// effects is safe: every step converges when run again.
    pub async fn handle_until(
        &self,
        payload: &Value,
        deadline: Option<Instant>,
    ) -> Result<StepOutcome, RotationError> {
        let started = Instant::now();
        let event = match RotationEvent::from_json(payload) {
            Ok(event) => event,
            Err(invalid) => {
                let error = RotationError::from(invalid);
                tracing::error!(
                    outcome = "rejected",
                    error_type = error.error_type(),
                    duration_ms = started.elapsed().as_millis() as u64,
                    "rotation event rejected: {error}"
                );
                return Err(error);
            }
        };
        // The full ARN once DescribeSecret has answered; the event's SecretId until then.
        let mut secret_arn = event.secret_id.as_str().to_owned();
        let work = self.run(&event, &mut secret_arn);
        let result = match deadline {
            None => work.await,
            Some(deadline) => tokio::time::timeout_at(deadline.into(), work)
                .await
                .unwrap_or_else(|_| {
                    Err(RotationError::OutOfTime {
                        step: event.step,
                        seconds: started.elapsed().as_secs(),
                    })
                }),
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let step = event.step.as_str();
        let secret_arn = secret_arn.as_str();
        let version_id = event.client_request_token.as_str();
        match &result {
            Ok(outcome) => tracing::info!(
                step,
                secret_arn,
                version_id,
                outcome = outcome.as_str(),
                duration_ms,
                "{step} succeeded"
            ),
            Err(error) => tracing::error!(
                step,
                secret_arn,
                version_id,
                outcome = "failed",
                error_type = error.error_type(),
                transient = error.is_transient(),
                duration_ms,
                "{step} failed: {error}"
            ),
        }
        if let Some(metrics) = &self.metrics {
            metrics.emit(step, secret_arn, result.is_err(), duration_ms);
        }
        result
    }

    /// Runs one step of a validated event, writing the secret's ARN to `secret_arn` as soon as
    /// it is known.
    pub async fn run(
        &self,
        event: &RotationEvent,
        secret_arn: &mut String,
    ) -> Result<StepOutcome, RotationError> {
        // Before any call: a process holds the values of one rotation at most.
        self.cache.begin_step(
            event.secret_id.as_str(),
            event.client_request_token.as_str(),
        );
        let description = self.store.describe(event.secret_id.as_str()).await?;
        secret_arn.clone_from(&description.arn);
        self.cache.forget_unlabelled(&description);
        let token = event.client_request_token.as_str();
        let arn = description.arn.as_str();

        // The preamble, with the AWS templates' checks and texts, in their order.
        if !description.rotation_enabled {
            return Err(RotationError::RotationNotEnabled {
                secret: arn.to_owned(),
            });
        }
        if description.labels_of(token).is_none() {
            return Err(RotationError::UnknownVersion {
                secret: arn.to_owned(),
                token: token.to_owned(),
            });
        }
        if description.has_label(token, StagingLabel::Current) {
            let outcome = self.already_current(event, &description).await;
            // The rotation is over: nothing of it stays in the process.
            self.cache.clear();
            return outcome;
        }
        if !description.has_label(token, StagingLabel::Pending) {
            return Err(RotationError::VersionNotPending {
                secret: arn.to_owned(),
                token: token.to_owned(),
            });
        }

        let versions = SecretVersions::new(
            &*self.store,
            &self.cache,
            &description,
            &event.client_request_token,
        );
        match event.step {
            Step::CreateSecret => self.create_secret(event, &versions).await,
            Step::SetSecret => {
                self.target.apply(&versions).await?;
                Ok(StepOutcome::Applied)
            }
            Step::TestSecret => match self.target.verify(&versions).await {
                Ok(()) => Ok(StepOutcome::Verified),
                Err(failure) => Err(self.roll_back(&versions, failure).await),
            },
            Step::FinishSecret => {
                let finished = self.finish_secret(&versions).await;
                if finished.is_ok() {
                    self.cache.clear();
                }
                finished
            }
        }
    }

    /// The token is already `AWSCURRENT`: the rotation completed, and any step is a no-op.
    /// finishSecret alone still completes what a crash or a failure may have cut short: while
    /// `AWSPENDING` is still on the token, the target's clean-up has not been confirmed, so it
    /// runs again, and then the label goes (without which the next rotation cannot start).
    async fn already_current(
        &self,
        event: &RotationEvent,
        description: &SecretDescription,
    ) -> Result<StepOutcome, RotationError> {
        let token = event.client_request_token.as_str();
        tracing::info!(
            "Secret version {token} already set as AWSCURRENT for secret {}.",
            description.arn
        );
        if event.step != Step::FinishSecret || !description.has_label(token, StagingLabel::Pending)
        {
            return Ok(StepOutcome::AlreadyCurrent);
        }
        let versions = SecretVersions::new(
            &*self.store,
            &self.cache,
            description,
            &event.client_request_token,
        );
        self.target.after_finish(&versions).await?;
        self.store
            .update_label(&description.arn, StagingLabel::Pending, None, Some(token))
            .await?;
        Ok(StepOutcome::PendingLabelRemoved)
    }

    /// States createSecret can find:
    /// - the pending version has no value (the first attempt): derive one from `AWSCURRENT` and
    ///   store it;
    /// - it has a value (a retry after the write, or a concurrent duplicate invocation): keep
    ///   it, because setSecret may already have applied it;
    /// - the write loses a race with a concurrent duplicate (`ResourceExistsException`): the
    ///   other invocation's value stands, and that is success.
    async fn create_secret(
        &self,
        event: &RotationEvent,
        versions: &SecretVersions<'_>,
    ) -> Result<StepOutcome, RotationError> {
        if versions.try_pending().await?.is_some() {
            return Ok(StepOutcome::PendingAlreadyStored);
        }
        let current = versions.current().await?;
        let pending = self.target.derive_pending(current, versions).await?;
        let written = self
            .store
            .put_pending(
                versions.secret_arn(),
                versions.token(),
                &pending.to_secret_string(),
                event.rotation_token.as_ref(),
            )
            .await;
        match written {
            Ok(()) => {
                crate::crash::after(crate::crash::points::PENDING_STORED);
                Ok(StepOutcome::PendingStored)
            }
            Err(error) if error.kind == StoreErrorKind::VersionExists => {
                match versions.try_pending().await? {
                    Some(_) => {
                        if let Err(discard) = self.target.discard(&pending, versions).await {
                            tracing::warn!(
                                "createSecret: a duplicate invocation stored the pending value \
                                 first; releasing the one derived here failed: {discard}"
                            );
                        }
                        Ok(StepOutcome::PendingAlreadyStored)
                    }
                    None => Err(error.into()),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// After a failed testSecret: when the target *rejected* the pending credential, lets the
    /// target put the current credential back in force, and when it did, removes `AWSPENDING` so
    /// the failed rotation is not retried with a credential that locks applications out. Returns
    /// the error to report: the test's failure, with what the roll-back did or why it could not.
    ///
    /// Only a rejection proves the pending credential bad. A target that could not be reached in
    /// time (a slow or overloaded database, too many connections, a network fault) says nothing
    /// about it: the rotation is left exactly as it is, and Secrets Manager's retry of testSecret
    /// finishes it once the target answers. Rolling back there would throw away a rotation that
    /// was about to succeed. The same holds for the step running out of time (`OutOfTime`, which
    /// never reaches here: the whole step is abandoned at the deadline), for a Secrets Manager
    /// error, and for an unusable version, none of which changed anything at the target.
    async fn roll_back(
        &self,
        versions: &SecretVersions<'_>,
        failure: RotationError,
    ) -> RotationError {
        let RotationError::Target(failure) = failure else {
            return failure;
        };
        match failure.kind {
            TargetErrorKind::Rejected => {}
            TargetErrorKind::Unreachable => {
                return TargetError {
                    kind: failure.kind,
                    message: format!(
                        "{}; nothing rolled back: AWSPENDING and the target are left as they \
                         are, so a retry of testSecret can finish this rotation",
                        failure.message
                    ),
                }
                .into()
            }
            TargetErrorKind::InvalidSecret => return failure.into(),
        }
        let arn = versions.secret_arn();
        let token = versions.token();
        let outcome = match self.target.roll_back(versions).await {
            Ok(RollBack::NothingToUndo) => return failure.into(),
            Ok(RollBack::OnCurrent) => match self
                .store
                .update_label(arn, StagingLabel::Pending, None, Some(token))
                .await
            {
                Ok(()) => {
                    // The rotation is abandoned: nothing of it stays in the process.
                    self.cache.clear();
                    format!(
                        "rolled back: the AWSCURRENT credentials work again and AWSPENDING was \
                         removed from version {token}, which ends this rotation; start a new \
                         one once the cause is fixed"
                    )
                }
                Err(error) => format!(
                    "rolled back: the AWSCURRENT credentials work again, but removing \
                     AWSPENDING failed ({error}); the next attempt rolls back again"
                ),
            },
            Err(error) => format!("could not roll back to the AWSCURRENT credentials: {error}"),
        };
        tracing::warn!("testSecret failed for secret {arn}; {outcome}");
        TargetError {
            kind: failure.kind,
            message: format!("{}; {outcome}", failure.message),
        }
        .into()
    }

    /// Moves `AWSCURRENT` to the token, naming the version it leaves as the service requires
    /// (none when no version is current), lets the target clean up, then removes `AWSPENDING`.
    ///
    /// The label goes last on purpose: while it stays on the new current version (a valid end
    /// state for the service), a retried finishSecret knows the clean-up is not confirmed and
    /// runs it again (see `already_current`). Removing it first would let a crash or a failed
    /// clean-up skip that work for good.
    async fn finish_secret(
        &self,
        versions: &SecretVersions<'_>,
    ) -> Result<StepOutcome, RotationError> {
        let arn = versions.secret_arn();
        let token = versions.token();
        let old_current = versions.description().version_with(StagingLabel::Current);
        self.store
            .update_label(arn, StagingLabel::Current, Some(token), old_current)
            .await?;
        crate::crash::after(crate::crash::points::CURRENT_MOVED);
        tracing::info!(
            "finishSecret: Successfully set AWSCURRENT stage to version {token} for secret {arn}."
        );
        self.target.after_finish(versions).await?;
        self.store
            .update_label(arn, StagingLabel::Pending, None, Some(token))
            .await?;
        crate::crash::after(crate::crash::points::PENDING_REMOVED);
        Ok(StepOutcome::Finished)
    }
}
