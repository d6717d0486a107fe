//! The crash matrix for `rotate-mysql`: for each strategy and each side effect a rotation makes,
//! a test build of the binary aborts right after it; the rotation retried as Secrets Manager
//! would must converge, with the current or the pending credentials working at every moment in
//! between.

mod support;

use async_trait::async_trait;
use rotate_mysql::sql::{quote_identifier, quote_string};
use rotation::crash::points;
use rotation_tests::crash_matrix::{crash_then_converge, Credentials};
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
        points::PASSWORD_SET,
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
        points::CLONE_CREATED,
        points::GRANTS_REPLAYED,
        points::PASSWORD_SET,
        points::CURRENT_MOVED,
        points::PENDING_REMOVED,
    ] {
        let user = AppUser::create(&unique("crash_alt"), "%", "initial-Passw0rd-alt").await;
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

        let mut output = crash_then_converge(&moto, BINARY, &env, &arn, point, &MysqlLogins).await;
        // The next rotation, back to the original user, passes every point but the clone's
        // creation.
        if point != points::CLONE_CREATED {
            output.push_str(
                &crash_then_converge(&moto, BINARY, &env, &arn, point, &MysqlLogins).await,
            );
        }
        let mut secrets = moto.field_values(&arn, "password").await;
        secrets.push(master_password.clone());
        assert_no_secret_in(&output, &secrets, point);

        run_as_admin(&[
            format!(
                "DROP USER IF EXISTS {}",
                account_name(&format!("{}_clone", user.name), "%")
            ),
            format!("DROP USER IF EXISTS {}", account_name(&master, "%")),
            format!("DROP DATABASE IF EXISTS {}", quote_identifier(&database)),
        ])
        .await;
        user.drop().await;
    }
}
