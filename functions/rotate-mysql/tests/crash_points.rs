//! The crash matrix for `rotate-mysql`: for each strategy and each side effect a rotation makes,
//! a test build of the binary aborts right after it; the rotation retried as Secrets Manager
//! would must converge, with the current or the pending credentials working at every moment in
//! between.

mod support;

use async_trait::async_trait;
use rotate_mysql::sql::{quote_identifier, quote_string};
use rotation::crash::points;
use rotation_database::crash_points as database_points;
use rotation_tests::crash_matrix::{crash_then_converge, duplicate_steps_converge, Credentials};
use rotation_tests::secrets_manager::MotoSecretsManager;
use rotation_tests::stack;
use serde_json::{json, Value};
use support::{
    account_name, assert_no_secret_in, login, mariadb, run_as_admin, template_secret, unique,
    AppUser, Login, BINARY,
};

struct MysqlLogins;

#[async_trait]
impl Credentials for MysqlLogins {
    async fn work(&self, secret: &Value) -> bool {
        let (Some(user), Some(password)) =
            (secret["username"].as_str(), secret["password"].as_str())
        else {
            return false;
        };
        login(user, password).await == Login::Ok
    }
}

async fn environment(moto: &MotoSecretsManager, strategy: &str) -> Vec<(String, String)> {
    let mut env = moto.function_environment();
    env.push((
        "CA_BUNDLE".to_owned(),
        mariadb().await.ca_cert_path().display().to_string(),
    ));
    env.push(("ROTATION_STRATEGY".to_owned(), strategy.to_owned()));
    // The test's names are longer than MySQL 5.6's 16 characters; MariaDB allows 80.
    env.push(("USERNAME_CHARACTER_LIMIT".to_owned(), "80".to_owned()));
    env
}

#[tokio::test]
async fn single_user_converges_after_a_crash_at_every_point() {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let env = environment(&moto, "single-user").await;
    for point in [
        points::PENDING_STORED,
        database_points::PASSWORD_SET,
        points::CURRENT_MOVED,
        points::PENDING_REMOVED,
    ] {
        let user = AppUser::create(&unique("crash"), "%", "initial-Passw0rd-crash").await;
        let arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("mysql-crash"),
                &template_secret("mariadb", &user.name, &user.password)
                    .await
                    .to_string(),
            )
            .await;
        let output = crash_then_converge(&moto, BINARY, &env, &arn, point, &MysqlLogins).await;
        assert_no_secret_in(&output, &moto.field_values(&arn, "password").await, point);
        user.drop().await;
    }
}

#[tokio::test]
async fn alternating_users_converge_after_a_crash_at_every_point() {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let env = environment(&moto, "alternating-users").await;
    for point in [
        points::PENDING_STORED,
        database_points::CLONE_CREATED,
        database_points::GRANTS_REPLAYED,
        database_points::PASSWORD_SET,
        points::CURRENT_MOVED,
        points::PENDING_REMOVED,
    ] {
        let alternating = Alternating::create(&moto, "crash_alt").await;
        let arn = alternating.arn.clone();
        let mut output = crash_then_converge(&moto, BINARY, &env, &arn, point, &MysqlLogins).await;
        // The next rotation, back to the original user, passes every point but the clone's
        // creation.
        if point != database_points::CLONE_CREATED {
            output.push_str(
                &crash_then_converge(&moto, BINARY, &env, &arn, point, &MysqlLogins).await,
            );
        }
        let mut secrets = moto.field_values(&arn, "password").await;
        secrets.push(alternating.master_password.clone());
        assert_no_secret_in(&output, &secrets, point);

        alternating.drop().await;
    }
}

/// A user with a database it may read, a master with every privilege WITH GRANT OPTION (as an
/// RDS master), and the user's secret naming the master's.
struct Alternating {
    user: AppUser,
    database: String,
    master: String,
    master_password: String,
    arn: String,
}

impl Alternating {
    async fn create(moto: &MotoSecretsManager, prefix: &str) -> Alternating {
        let user = AppUser::create(&unique(prefix), "%", "initial-Passw0rd-alt").await;
        let database = unique("crash_db");
        let master = unique("crash_master");
        let master_password = format!("master-{master}-Pw");
        run_as_admin(&[
            format!(
                "CREATE USER {} IDENTIFIED BY {}",
                account_name(&master, "%"),
                quote_string(&master_password, false)
            ),
            format!(
                "GRANT ALL PRIVILEGES ON *.* TO {} WITH GRANT OPTION",
                account_name(&master, "%")
            ),
            format!("CREATE DATABASE {}", quote_identifier(&database)),
            format!(
                "GRANT SELECT, INSERT ON {}.* TO {}",
                quote_identifier(&database),
                user.account()
            ),
        ])
        .await;
        let master_arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("mysql-crash-master"),
                &template_secret("mariadb", &master, &master_password)
                    .await
                    .to_string(),
            )
            .await;
        let mut secret = template_secret("mariadb", &user.name, &user.password).await;
        secret["masterarn"] = json!(master_arn);
        let arn = moto
            .create_secret(
                &MotoSecretsManager::unique_name("mysql-crash-alt"),
                &secret.to_string(),
            )
            .await;
        Alternating {
            user,
            database,
            master,
            master_password,
            arn,
        }
    }

    async fn drop(self) {
        run_as_admin(&[
            format!(
                "DROP USER IF EXISTS {}",
                account_name(&format!("{}_clone", self.user.name), "%")
            ),
            format!("DROP USER IF EXISTS {}", account_name(&self.master, "%")),
            format!(
                "DROP DATABASE IF EXISTS {}",
                quote_identifier(&self.database)
            ),
        ])
        .await;
        self.user.drop().await;
    }
}

#[tokio::test]
async fn duplicate_invocations_of_every_step_leave_one_correct_end_state() {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    for strategy in ["single-user", "alternating-users"] {
        let env = environment(&moto, strategy).await;
        let alternating = Alternating::create(&moto, "dup").await;
        for _ in 0..2 {
            duplicate_steps_converge(&moto, BINARY, &env, &alternating.arn, &MysqlLogins).await;
        }
        alternating.drop().await;
    }
}

/// Applications keep logging in while 50 alternating-users rotations run back to back: a login
/// that fails with cached credentials succeeds after one re-read of `AWSCURRENT`, every time.
#[tokio::test]
async fn fifty_alternating_rotations_under_load_fail_no_login_after_a_re_read() {
    let moto = MotoSecretsManager::connect(&stack::moto().await.endpoint()).await;
    let env = environment(&moto, "alternating-users").await;
    let alternating = Alternating::create(&moto, "load").await;
    let function = rotation_tests::runtime_api::LambdaFunction::start(
        rotation_tests::runtime_api::FunctionSpec::new(BINARY).env(env),
    )
    .await
    .expect("the function starts");
    let orchestrator = rotation_tests::orchestrator::Orchestrator {
        moto: &moto,
        function: &function,
    };
    let rotations = async {
        for _ in 0..50 {
            orchestrator.rotate(&alternating.arn).await.expect_success();
            tokio::time::sleep(rotation_tests::load::ROTATION_PAUSE).await;
        }
    };
    let ((), report) = rotation_tests::load::logins_during(
        &moto,
        &alternating.arn,
        &MysqlLogins,
        std::time::Duration::from_millis(5),
        rotations,
    )
    .await;
    eprintln!("MariaDB under 50 rotations: {report:?}");
    assert_eq!(report.failed_after_re_read, 0, "{report:?}");
    assert!(
        report.logins >= 50,
        "the client kept logging in: {report:?}"
    );
    assert!(
        report.re_reads > 0,
        "cached credentials did go stale: {report:?}"
    );
    function.stop().await;
    alternating.drop().await;
}
