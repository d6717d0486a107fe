//! One conformance suite for the database functions, written once and run for every engine.
//!
//! A scenario (single user, alternating users, roll-back, the crash matrix, hostile input,
//! faults, TLS, load) drives the real function binary under the Runtime API emulator against a
//! real server, and asks the engine only what differs: how to make a user like an
//! application's, a master for alternating users, how to log in, and what the user may do
//! ([`DatabaseUnderTest`]). Each database function's `tests/conformance.rs` implements the trait
//! (its binary is reachable only from its own package) and expands [`database_conformance!`]
//! into one `#[tokio::test]` per scenario, in a module named after the engine; what only one
//! engine has (SCRAM verifiers, grant replay, host parts) stays in that function's own tests.
//!
//! Every name is unique to the test (process id and a counter), so tests run in parallel against
//! the one server and moto of the test process; each test drops what it created.

pub mod alternating_users;
pub mod crash;
pub mod faults;
pub mod hostile;
pub mod single_user;
pub mod tls;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::crash_matrix::Credentials;
use crate::hostile::BadSetting;
use crate::login::Login;
use crate::orchestrator::{Orchestrator, RotationRecord};
use crate::runtime_api::{FunctionSpec, LambdaFunction};
use crate::secrets_manager::MotoSecretsManager;
use crate::stack;

/// Where the engine's server listens, and its administrator (a superuser, or an account with
/// every privilege): what the scenarios need to write secrets and check the end state.
pub struct Server {
    /// The host name the certificate lists (`localhost`).
    pub host: &'static str,
    /// The same server by address (`127.0.0.1`), a host name other than the secret's.
    pub ip: &'static str,
    pub port: u16,
    pub ca_cert: PathBuf,
    pub admin: &'static str,
    pub admin_password: String,
}

/// A database engine as the conformance suite drives it: the function that rotates it, and
/// the server the stack runs for it.
#[async_trait]
pub trait DatabaseUnderTest: Sync {
    /// The function's name (`rotate-postgres`): its events directory and its log's name.
    fn function(&self) -> &'static str;
    /// The function's test build (`env!("CARGO_BIN_EXE_…")`, which only its package has).
    fn binary(&self) -> &'static str;
    /// The `engine` values a secret for this server may hold; scenarios that depend on it run
    /// with each.
    fn engines(&self) -> &'static [&'static str];
    /// An `engine` of the other database function, which this one must refuse.
    fn foreign_engine(&self) -> &'static str;
    /// How the function names the server in `setSecret`'s log line for `engine`
    /// (`… in PostgreSQL DB`).
    fn database_name(&self, engine: &str) -> &'static str;
    /// How the function names the server in `testSecret`'s log line.
    fn test_database_name(&self) -> &'static str;
    /// The TLS mode the function logs for a verified connection.
    fn verified_tls_mode(&self) -> &'static str;
    /// The start of the statement that carries the password, as it crosses the wire in
    /// plaintext (a fault cuts the connection right after it).
    fn password_statement(&self) -> &'static str;
    /// Fields every secret for this server has beyond engine, host, port, user and password.
    fn secret_fields(&self) -> Value;
    /// Settings beyond `CA_BUNDLE` the function needs for the suite's names.
    fn environment(&self) -> Vec<(String, String)>;
    /// Invalid settings of this function only (beyond the database functions' shared list).
    fn bad_settings(&self) -> Vec<BadSetting>;
    /// The points of the crash matrix an alternating-users rotation passes, in order.
    fn alternating_crash_points(&self) -> &'static [&'static str];

    /// Starts the server (or reuses the one of this test process).
    async fn server(&self) -> Server;
    /// Makes a user as an application's: it logs in with `password` and owns or may use
    /// something, which [`privileges`](Self::privileges) shows.
    async fn create_user(&self, name: &str, password: &str);
    /// Sets a user's password as the administrator (drift, a restore).
    async fn set_password(&self, name: &str, password: &str);
    /// Drops a user and what [`create_user`](Self::create_user) made for it.
    async fn drop_user(&self, name: &str);
    /// Makes a master for `user`'s alternating-users secret, as a database service would: it
    /// may create users like `user` and set their passwords.
    async fn create_master(&self, user: &str, master: &str, password: &str);
    /// Drops the master and `user`'s alternate user.
    async fn drop_master(&self, user: &str, master: &str);
    /// Logs in over TLS verified against the stack's CA and checks the session answers.
    async fn login(&self, user: &str, password: &str) -> Login;
    /// Everything about `users` that a rotation must not change, apart from their
    /// passwords: attributes, grants or memberships, what they own. Sorted, one row a line.
    async fn privileges(&self, users: &[String]) -> Vec<String>;
    /// A database `user` may log in to and use.
    async fn create_database(&self, user: &str, database: &str);
    /// Takes away what `user` needs in `database` for testSecret's login and query, without
    /// touching its password.
    async fn take_away_database(&self, user: &str, database: &str);
    async fn drop_database(&self, database: &str);
    /// Marks the server's record of logins: [`logins_seen`](Self::logins_seen) tells whether a
    /// login as a user reached the server after the mark (a refused TLS handshake never does).
    async fn mark_logins(&self) -> u64;
    async fn logins_seen(&self, user: &str, mark: u64) -> bool;
    /// The server's own log, which no secret may reach.
    async fn server_log(&self) -> String;
    /// The leak check, with the forms this dialect's quoting gives a secret.
    fn assert_no_secret_in(&self, text: &str, secrets: &[String], what: &str) {
        crate::leaks::assert_no_secret_in(text, secrets, what);
    }
}

static NAMES: AtomicU64 = AtomicU64::new(0);

/// A name no other test of any test process uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NAMES.fetch_add(1, Ordering::Relaxed)
    )
}

/// An application user the suite made, with its first password.
pub struct User {
    pub name: String,
    pub password: String,
}

impl User {
    pub async fn create(database: &dyn DatabaseUnderTest, prefix: &str) -> User {
        let name = unique(prefix);
        let password = format!("initial-Passw0rd-{prefix}");
        database.create_user(&name, &password).await;
        User { name, password }
    }

    pub async fn drop(self, database: &dyn DatabaseUnderTest) {
        database.drop_user(&self.name).await;
    }
}

/// A secret in the AWS templates' format for `user` on the engine's server.
pub async fn template_secret(
    database: &dyn DatabaseUnderTest,
    engine: &str,
    user: &str,
    password: &str,
) -> Value {
    let server = database.server().await;
    let mut secret = json!({
        "engine": engine,
        "host": server.host,
        "username": user,
        "password": password,
        "port": server.port,
    });
    if let (Some(secret), Value::Object(fields)) =
        (secret.as_object_mut(), database.secret_fields())
    {
        secret.extend(fields);
    }
    secret
}

/// The function's environment for `moto`: its endpoint, the stack's CA, the engine's settings.
pub async fn environment(
    database: &dyn DatabaseUnderTest,
    moto: &MotoSecretsManager,
    extra_env: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env = moto.function_environment();
    env.push((
        "CA_BUNDLE".to_owned(),
        database.server().await.ca_cert.display().to_string(),
    ));
    env.extend(database.environment());
    for (name, value) in extra_env {
        env.push(((*name).to_owned(), (*value).to_owned()));
    }
    env
}

/// The function under the Runtime API emulator, its secret in moto, and its environment (kept
/// to start a fresh process later).
pub struct Fixture<'d> {
    pub database: &'d dyn DatabaseUnderTest,
    pub moto: MotoSecretsManager,
    pub function: LambdaFunction,
    pub arn: String,
    pub env: Vec<(String, String)>,
}

impl<'d> Fixture<'d> {
    /// The secret, and the function with `CA_BUNDLE` = the stack's CA plus `extra_env`.
    pub async fn start(
        database: &'d dyn DatabaseUnderTest,
        secret: &Value,
        extra_env: &[(&str, &str)],
    ) -> Fixture<'d> {
        let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
        let arn = moto
            .create_secret(&unique("db-secret"), &secret.to_string())
            .await;
        let env = environment(database, &moto, extra_env).await;
        Fixture::launch(database, moto, arn, env).await
    }

    /// The function with exactly `env`, for the secret `arn` in `moto`.
    pub async fn launch(
        database: &'d dyn DatabaseUnderTest,
        moto: MotoSecretsManager,
        arn: String,
        env: Vec<(String, String)>,
    ) -> Fixture<'d> {
        let function =
            LambdaFunction::start(FunctionSpec::new(database.binary()).env(env.iter().cloned()))
                .await
                .expect("the function starts");
        Fixture {
            database,
            moto,
            function,
            arn,
            env,
        }
    }

    /// [`start`](Self::start) with the template secret of `user` and the first engine.
    pub async fn for_user(
        database: &'d dyn DatabaseUnderTest,
        user: &User,
        extra_env: &[(&str, &str)],
    ) -> Fixture<'d> {
        let engine = database.engines()[0];
        let secret = template_secret(database, engine, &user.name, &user.password).await;
        Fixture::start(database, &secret, extra_env).await
    }

    pub fn orchestrator(&self) -> Orchestrator<'_> {
        Orchestrator {
            moto: &self.moto,
            function: &self.function,
        }
    }

    pub async fn rotate(&self) -> RotationRecord {
        self.orchestrator().rotate(&self.arn).await
    }

    pub async fn labels(&self) -> BTreeMap<String, Vec<String>> {
        self.moto.labels(&self.arn).await
    }

    /// The VersionId holding `label`.
    pub async fn version_with(&self, label: &str) -> Option<String> {
        self.labels()
            .await
            .into_iter()
            .find(|(_, labels)| labels.iter().any(|l| l == label))
            .map(|(id, _)| id)
    }

    pub async fn value_at(&self, stage: &str) -> Value {
        self.moto
            .value_at(&self.arn, stage)
            .await
            .unwrap_or_else(|| panic!("{stage} has a value"))
    }

    pub async fn password_at(&self, stage: &str) -> String {
        self.value_at(stage).await["password"]
            .as_str()
            .expect("a password")
            .to_owned()
    }

    /// Kills the process and starts a new one with the same configuration: a cold start.
    pub async fn restart(self) -> Fixture<'d> {
        let Fixture {
            database,
            moto,
            function,
            arn,
            env,
        } = self;
        function.stop().await;
        Fixture::launch(database, moto, arn, env).await
    }

    /// Starts a rotation whose pending version, `pending`, someone else wrote, and returns
    /// setSecret's refusal, checked to be `InvalidSecret`.
    pub async fn set_secret_refuses(&self, pending: &Value) -> String {
        let token = self.moto.start_rotation(&self.arn).await;
        self.moto
            .put_pending(&self.arn, &token, &pending.to_string())
            .await;
        let record = self
            .orchestrator()
            .invoke(&self.arn, &token, "setSecret")
            .await;
        let (error_type, message) = record.invocation.failed().expect("setSecret refuses");
        assert_eq!(error_type, "InvalidSecret", "{message}");
        message
    }

    /// One rotation with every step invoked twice, as Secrets Manager may: each invocation
    /// succeeds, and the labels end as after single invocations.
    pub async fn rotate_with_every_step_twice(&self) {
        let old_token = self.version_with("AWSCURRENT").await.expect("current");
        let token = self.moto.start_rotation(&self.arn).await;
        for step in crate::orchestrator::STEPS {
            for attempt in 0..2 {
                let record = self.orchestrator().invoke(&self.arn, &token, step).await;
                assert!(
                    matches!(
                        record.invocation,
                        crate::runtime_api::Invocation::Succeeded(_)
                    ),
                    "{step} attempt {attempt}: {:?}",
                    record.invocation
                );
            }
        }
        assert_rotated(&self.labels().await, &token, &old_token);
    }

    pub fn output(&self) -> String {
        self.function.output()
    }

    /// Stops the function; no secret any test has seen may be in the server's log.
    pub async fn stop(self) {
        self.function.stop().await;
        crate::leaks::assert_no_known_secret_in(
            &self.database.server_log().await,
            "the server's log",
        );
    }
}

/// After a successful rotation: `new` is AWSCURRENT alone, `old` AWSPREVIOUS alone, and no
/// version is AWSPENDING.
pub fn assert_rotated(labels: &BTreeMap<String, Vec<String>>, new: &str, old: &str) {
    assert_eq!(
        labels.get(new),
        Some(&vec!["AWSCURRENT".to_owned()]),
        "{labels:?}"
    );
    assert_eq!(
        labels.get(old),
        Some(&vec!["AWSPREVIOUS".to_owned()]),
        "{labels:?}"
    );
    assert_no_pending(labels);
}

pub fn assert_no_pending(labels: &BTreeMap<String, Vec<String>>) {
    assert!(
        labels
            .values()
            .all(|l| !l.iter().any(|l| l == "AWSPENDING")),
        "no AWSPENDING left: {labels:?}"
    );
}

/// Runs `rounds` rotations, checking after each one the labels, the new password, the retired
/// one and the user's privileges. Returns every password the user had, the initial one first.
pub async fn rotate_and_check(fixture: &Fixture<'_>, user: &User, rounds: usize) -> Vec<String> {
    let database = fixture.database;
    let privileges = database.privileges(std::slice::from_ref(&user.name)).await;
    let mut old_token = fixture
        .version_with("AWSCURRENT")
        .await
        .expect("a current version");
    let mut passwords = vec![user.password.clone()];
    for round in 1..=rounds {
        let record = fixture.rotate().await;
        record.expect_success();
        assert_rotated(&fixture.labels().await, &record.token, &old_token);
        let new_password = fixture.password_at("AWSCURRENT").await;
        let old_password = passwords.last().expect("a password").clone();
        assert!(
            !passwords.contains(&new_password),
            "round {round}: a new password"
        );
        assert_eq!(
            database.login(&user.name, &new_password).await,
            Login::Ok,
            "round {round}: the new AWSCURRENT password logs in as {}",
            user.name
        );
        assert_eq!(
            database.login(&user.name, &old_password).await,
            Login::Rejected,
            "round {round}: the old password is rejected"
        );
        assert_eq!(
            database.privileges(std::slice::from_ref(&user.name)).await,
            privileges,
            "round {round}: the user may do what it did"
        );
        passwords.push(new_password);
        old_token = record.token;
    }
    passwords
}

/// A version's credentials log in: what the crash matrix and the load client ask.
pub struct Logins<'d>(pub &'d dyn DatabaseUnderTest);

#[async_trait]
impl Credentials for Logins<'_> {
    async fn work(&self, secret: &Value) -> bool {
        let (Some(user), Some(password)) =
            (secret["username"].as_str(), secret["password"].as_str())
        else {
            return false;
        };
        self.0.login(user, password).await == Login::Ok
    }
}

/// A user with an alternating-users secret: the master, its secret, and the user's secret
/// naming it, in `moto`.
pub struct Alternating {
    pub user: User,
    pub master: String,
    pub master_password: String,
    pub master_arn: String,
    pub arn: String,
}

impl Alternating {
    pub async fn create(
        database: &dyn DatabaseUnderTest,
        moto: &MotoSecretsManager,
        prefix: &str,
    ) -> Alternating {
        let user = User::create(database, prefix).await;
        let master = unique(&format!("{prefix}_master"));
        let master_password = format!("master-{master}-Pw");
        database
            .create_master(&user.name, &master, &master_password)
            .await;
        let engine = database.engines()[0];
        let master_secret = template_secret(database, engine, &master, &master_password).await;
        let master_arn = moto
            .create_secret(&unique("db-master"), &master_secret.to_string())
            .await;
        let mut secret = template_secret(database, engine, &user.name, &user.password).await;
        secret["masterarn"] = json!(master_arn);
        secret["team"] = json!({"name": "payments"});
        let arn = moto
            .create_secret(&unique("db-alternating"), &secret.to_string())
            .await;
        Alternating {
            user,
            master,
            master_password,
            master_arn,
            arn,
        }
    }

    /// The master's password is the one its secret holds: no rotation changed it.
    pub async fn assert_master_logs_in(&self, database: &dyn DatabaseUnderTest) {
        assert!(
            Logins(database)
                .work(&json!({"username": self.master, "password": self.master_password}))
                .await,
            "the master's password is unchanged"
        );
    }

    pub fn clone_name(&self) -> String {
        format!("{}_clone", self.user.name)
    }

    pub async fn drop(self, database: &dyn DatabaseUnderTest) {
        database.drop_master(&self.user.name, &self.master).await;
        self.user.drop(database).await;
    }
}

/// Expands to one `#[tokio::test]` per scenario of the suite, in a module named `$engine`, for
/// `$database` (a value implementing [`DatabaseUnderTest`], given by path from the crate root).
/// The test's path reads as a sentence about the engine:
/// `postgresql::every_single_user_step_invoked_twice_leaves_the_same_end_state`.
#[macro_export]
macro_rules! database_conformance {
    ($engine:ident, $database:expr) => {
        $crate::database_conformance!(@scenarios $engine, $database;
            single_user::three_consecutive_rotations_retire_each_old_password_and_keep_the_rest,
            single_user::every_single_user_step_invoked_twice_leaves_the_same_end_state,
            single_user::set_secret_recovers_through_awsprevious_when_awscurrent_no_longer_logs_in,
            single_user::a_pending_version_for_another_user_or_host_is_refused_and_the_database_is_unchanged,
            single_user::a_secret_rotated_by_this_function_rotates_again_after_a_cold_start,
            single_user::a_failed_test_rolls_the_password_back_so_awscurrent_keeps_working,
            single_user::no_password_appears_in_the_function_output_even_at_trace_level,
            single_user::every_step_writes_one_metric_record_and_no_secret_in_it,
            alternating_users::three_alternating_rotations_take_turns_and_both_versions_log_in,
            alternating_users::every_alternating_users_step_invoked_twice_leaves_the_same_end_state,
            alternating_users::a_pending_username_other_than_the_alternate_is_refused_and_nothing_changes,
            alternating_users::a_master_on_another_host_is_refused_without_any_change,
            alternating_users::a_secret_whose_alternate_user_is_the_master_is_refused_and_the_master_is_untouched,
            crash::single_user_converges_after_a_crash_at_every_point,
            crash::alternating_users_converge_after_a_crash_at_every_point,
            crash::duplicate_invocations_of_every_step_leave_one_correct_end_state,
            crash::fifty_alternating_rotations_under_load_fail_no_login_after_a_re_read,
            hostile::bad_events_are_refused_as_invalid_events_and_change_nothing,
            hostile::unusable_secrets_are_refused_before_anything_is_written,
            hostile::every_invalid_setting_is_refused_naming_its_variable,
            hostile::a_pending_version_for_another_engine_is_refused_and_the_database_is_unchanged,
            hostile::every_sample_event_is_refused_cleanly_as_is_and_rotates_a_seeded_secret,
            faults::secrets_manager_errors_are_retryable_and_the_retry_finishes_the_rotation,
            faults::a_secrets_manager_that_answers_too_late_fails_the_step_within_its_bound,
            faults::refused_and_slow_connections_are_classified_and_the_retry_finishes_the_rotation,
            faults::a_connection_cut_after_the_password_statement_is_finished_by_the_retry,
            faults::a_test_secret_that_times_out_rolls_nothing_back_and_the_retry_finishes_the_rotation,
            tls::verified_tls_with_the_stack_ca_succeeds_and_the_log_names_the_tls_mode,
            tls::a_wrong_ca_fails_with_a_clear_unreachable_error_and_no_plaintext_attempt,
            tls::a_host_name_the_certificate_does_not_list_fails_without_a_plaintext_attempt,
            tls::tls_mode_prefer_with_a_wrong_ca_falls_back_to_plaintext_with_a_warning,
            tls::ssl_false_in_the_secret_logs_in_in_plaintext,
        );
    };
    (@scenarios $engine:ident, $database:expr; $($module:ident :: $scenario:ident),* $(,)?) => {
        mod $engine {
            $(
                #[tokio::test]
                async fn $scenario() {
                    $crate::conformance::$module::$scenario(&$database).await;
                }
            )*
        }
    };
}
