//! What only MySQL-family servers have, for single user: accounts whose host part is not a
//! wildcard, account names quoted as strings in both sql_modes, and the quoting functions
//! checked by the server itself. The scenarios every engine shares are in `conformance.rs`.

mod support;

use rotate_mysql::sql::{quote_identifier, quote_string};
use rotation_tests::conformance::{
    rotate_and_check, template_secret, unique, DatabaseUnderTest, Fixture,
};
use rotation_tests::login::Login;
use rotation_tests::quoting_inputs;
use sqlx::{Column, Connection, MySqlConnection, Row};
use support::{account_rows, admin, assert_no_secret_in, login, run_as_admin, AppUser, MariaDb};

/// The function for `user`'s template secret with `engine`.
async fn start(engine: &str, user: &AppUser, env: &[(&str, &str)]) -> Fixture<'static> {
    let secret = template_secret(&MariaDb, engine, &user.name, &user.password).await;
    Fixture::start(&MariaDb, &secret, env).await
}

async fn loopback_only_account(engine: &str) {
    let user = AppUser::create(&unique("lo"), "127.0.0.1", "initial-Passw0rd-lo").await;
    let fixture = start(engine, &user, &[]).await;
    let passwords = rotate_and_check(&fixture, &user.user(), 2).await;
    let rows = account_rows(std::slice::from_ref(&user.name)).await;
    assert_eq!(rows.len(), 1, "no other account appeared: {rows:?}");
    assert_eq!(rows[0].host, "127.0.0.1");
    assert!(
        fixture.output().contains(&format!(
            "is logged in as account '{}'@'127.0.0.1' on MariaDB 10.11",
            user.name
        )),
        "{}",
        fixture.output()
    );
    assert_no_secret_in(&fixture.output(), &passwords, "the function's output");
    fixture.stop().await;
    user.drop().await;
}

/// `'app'@'10.0.%'` (the application servers) and `'app'@'127.0.0.1'` (where the function
/// connects from): the function logs in as the loopback account and changes that account, the
/// one the server matched; the other account is other credentials and stays as it was.
async fn wildcard_and_loopback_accounts(engine: &str) {
    let name = unique("two");
    let password = "initial-Passw0rd-two";
    let remote = AppUser::create(&name, "10.0.%", password).await;
    let local = AppUser::create(&name, "127.0.0.1", password).await;
    let remote_before = remote.row().await;
    let fixture = start(engine, &local, &[]).await;

    let passwords = rotate_and_check(&fixture, &local.user(), 2).await;

    assert_eq!(
        remote.row().await,
        remote_before,
        "'{name}'@'10.0.%' is untouched"
    );
    assert_ne!(
        local.row().await.authentication_string,
        remote_before.authentication_string,
        "the loopback account has the new password"
    );
    let output = fixture.output();
    assert!(
        output.contains(&format!("is logged in as account '{name}'@'127.0.0.1'")),
        "{output}"
    );
    assert_no_secret_in(&output, &passwords, "the function's output");
    fixture.stop().await;
    local.drop().await;
    remote.drop().await;
}

#[tokio::test]
async fn accounts_whose_host_is_not_a_wildcard_rotate_the_account_the_server_matched() {
    for engine in MariaDb.engines() {
        tokio::join!(
            loopback_only_account(engine),
            wildcard_and_loopback_accounts(engine)
        );
    }
}

/// Passwords made of every printable ASCII character (the policy with nothing excluded).
const ANYTHING: &[(&str, &str)] = &[("EXCLUDE_CHARACTERS", "")];
/// Passwords made only of punctuation: quotes, backslashes, backticks, `%` and `_` in every
/// rotation.
const PUNCTUATION_ONLY: &[(&str, &str)] = &[
    ("EXCLUDE_CHARACTERS", ""),
    ("EXCLUDE_NUMBERS", "true"),
    ("EXCLUDE_UPPERCASE", "true"),
    ("EXCLUDE_LOWERCASE", "true"),
];

/// Hostile account names: quotes of every kind, backslashes before quotes, wildcards,
/// backticks, Unicode, and injections aimed at `canary`. Each starts with `prefix`.
fn hostile_names(prefix: &str, canary: &str) -> [String; 3] {
    let suffix = unique("");
    [
        format!("{prefix}O'Brien \"Ops\" \\ 100% _ `t` ✓ Ünï{suffix}"),
        format!("{prefix}x'; DROP USER '{canary}'@'%'; --{suffix}"),
        format!("{prefix}x\\'; DROP USER '{canary}'@'%'; --{suffix}"),
    ]
}

/// Rotates each of `names` three times (one with punctuation-only passwords, two with any
/// character), engines alternating; returns every password used and the function outputs.
async fn rotate_hostile(names: &[String], initial: &str) -> (Vec<String>, Vec<String>) {
    let mut users = Vec::new();
    for name in names {
        assert!(name.chars().count() <= 80, "{name} fits MariaDB's limit");
        users.push(AppUser::create(name, "%", initial).await);
    }
    let run =
        |user: &AppUser, engine: &'static str, env: &'static [(&'static str, &'static str)]| {
            let name = user.name.clone();
            let password = user.password.clone();
            async move {
                let secret = template_secret(&MariaDb, engine, &name, &password).await;
                Fixture::start(&MariaDb, &secret, env).await
            }
        };
    let (first, second, third) = tokio::join!(
        run(&users[0], "mariadb", PUNCTUATION_ONLY),
        run(&users[1], "mysql", ANYTHING),
        run(&users[2], "mariadb", ANYTHING),
    );
    let rotated: Vec<_> = users.iter().map(AppUser::user).collect();
    let (first_passwords, second_passwords, third_passwords) = tokio::join!(
        rotate_and_check(&first, &rotated[0], 3),
        rotate_and_check(&second, &rotated[1], 3),
        rotate_and_check(&third, &rotated[2], 3),
    );
    assert!(
        first_passwords[1..]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_punctuation())),
        "punctuation-only passwords"
    );
    let passwords: Vec<String> = first_passwords
        .into_iter()
        .chain(second_passwords)
        .chain(third_passwords)
        .collect();
    let mut outputs = Vec::new();
    for fixture in [first, second, third] {
        outputs.push(fixture.output());
        fixture.stop().await;
    }
    for user in users {
        user.drop().await;
    }
    (passwords, outputs)
}

/// With backslash escapes on (the server's default) and with `NO_BACKSLASH_ESCAPES` in the
/// function's sessions. The mode is set per account, not globally, so that the other tests of
/// this process keep the default: `init_connect` (run at login for accounts without SUPER,
/// never for the admin) adds `NO_BACKSLASH_ESCAPES` to the session's `sql_mode` for the
/// accounts whose name starts with this test's prefix.
#[tokio::test]
async fn hostile_account_names_and_passwords_rotate_in_both_sql_modes_and_nothing_else_changes() {
    let canary = AppUser::create(&unique("canary"), "%", "canary-Passw0rd").await;
    let nbe_prefix = format!("nbe{}", std::process::id());
    let plain = hostile_names("", &canary.name);
    let escaped = hostile_names(&nbe_prefix, &canary.name);

    let mut involved: Vec<String> = plain.iter().chain(&escaped).cloned().collect();
    involved.push(canary.name.clone());
    involved.push(MariaDb.server().await.admin.to_owned());
    let before = account_rows(&involved).await;

    run_as_admin(&[format!(
        "SET GLOBAL init_connect = {}",
        quote_string(
            &format!(
                "SET SESSION sql_mode = IF(LEFT(CURRENT_USER(), {}) = {}, \
                 CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES'), @@SESSION.sql_mode)",
                nbe_prefix.chars().count(),
                quote_string(&nbe_prefix, false)
            ),
            false
        )
    )])
    .await;
    let initial = "it's \"q\" \\ 100% _ `x` ✓";
    let ((plain_passwords, plain_outputs), (nbe_passwords, nbe_outputs)) = tokio::join!(
        rotate_hostile(&plain, initial),
        rotate_hostile(&escaped, initial)
    );
    run_as_admin(&["SET GLOBAL init_connect = ''".to_owned()]).await;

    for output in &plain_outputs {
        assert!(output.contains("NO_BACKSLASH_ESCAPES off"), "{output}");
    }
    for output in &nbe_outputs {
        assert!(output.contains("NO_BACKSLASH_ESCAPES on"), "{output}");
    }
    // The rotated accounts were dropped; everything else is as it was.
    let admin_user = MariaDb.server().await.admin;
    let kept: Vec<_> = before
        .into_iter()
        .filter(|row| row.user == canary.name || row.user == admin_user)
        .collect();
    assert_eq!(
        account_rows(&involved).await,
        kept,
        "only the rotated accounts changed"
    );
    assert_eq!(login(&canary.name, &canary.password).await, Login::Ok);

    let passwords: Vec<String> = plain_passwords.into_iter().chain(nbe_passwords).collect();
    for output in plain_outputs.iter().chain(&nbe_outputs) {
        assert_no_secret_in(output, &passwords, "the function's output");
    }
    assert_no_secret_in(
        &MariaDb.server_log().await,
        &passwords,
        "the server's error log",
    );
    canary.drop().await;
}

/// The quoting functions, checked by the server itself in both sql_modes, with every seed of
/// the quoting fuzz targets and a few thousand generated hostile texts (NUL included: MariaDB's
/// strings hold it): our literal reads back as the original text, byte for byte, and our
/// identifier names a column exactly as given, for every text MariaDB accepts as a name.
#[tokio::test]
async fn quoted_literals_and_identifiers_round_trip_through_the_server_in_both_sql_modes() {
    let hand_picked = [
        "plain",
        "o'brien",
        "back\\slash",
        "\\",
        "\\'",
        "'",
        "trailing\\",
        "100%_done",
        "\\%\\_",
        "`tick` ``",
        "say \"hi\" \\\"",
        "x'; DROP USER 'admin'@'%'; --",
        "x\\'; DROP USER 'admin'@'%'; --",
        "ünïcødé ✓ 用户 🔑",
        "tab\tnew\nline\rcr",
        "ctrl-z \u{1a}",
        "nul \0 byte",
        " leading and trailing ",
        "",
    ];
    let texts = quoting_inputs::with_seeds_and_generated(&hand_picked, 3000);
    let mut connection = admin().await;
    for no_backslash_escapes in [false, true] {
        let mode = if no_backslash_escapes {
            "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')"
        } else {
            "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')"
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(mode))
            .execute(&mut connection)
            .await
            .expect("SET sql_mode");
        let info = rotate_mysql::sql::server_info(&mut connection)
            .await
            .expect("server info");
        assert_eq!(info.no_backslash_escapes, no_backslash_escapes);
        // Batches keep it to a few dozen statements.
        for batch in quoting_inputs::batches(&texts, 250, 256 << 10) {
            literals_read_back(&mut connection, batch, no_backslash_escapes).await;
            identifiers_name_columns(&mut connection, batch).await;
        }
    }
    let _ = connection.close().await;
}

/// One row per literal of the batch: its index, its bytes and its text as the server read it.
async fn literals_read_back(
    connection: &mut MySqlConnection,
    batch: &[String],
    no_backslash_escapes: bool,
) {
    let selects: Vec<String> = batch
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let literal = quote_string(text, no_backslash_escapes);
            format!(
                "SELECT {index} AS i, CAST({literal} AS BINARY) AS b, CAST({literal} AS CHAR) AS c"
            )
        })
        .collect();
    let statement = format!("{} ORDER BY i", selects.join(" UNION ALL "));
    let read: Vec<(i64, Vec<u8>, String)> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .fetch_all(&mut *connection)
        .await
        .unwrap_or_else(|error| {
            panic!("a batch of literals (NO_BACKSLASH_ESCAPES {no_backslash_escapes}): {error}")
        });
    assert_eq!(read.len(), batch.len());
    for ((index, bytes, value), text) in read.into_iter().zip(batch) {
        let literal = quote_string(text, no_backslash_escapes);
        let shown = format!("#{index} {literal} (NO_BACKSLASH_ESCAPES {no_backslash_escapes})");
        assert_eq!(bytes, text.as_bytes(), "{shown}");
        assert_eq!(&value, text, "{shown}");
    }
}

/// One column per text of the batch that MariaDB accepts as a name, named with our quoted
/// identifier. MariaDB drops the spaces and control characters a column alias starts with
/// (warning 1466), so the name it reports is the rest.
async fn identifiers_name_columns(connection: &mut MySqlConnection, batch: &[String]) {
    let reported = |name: &str| {
        name.trim_start_matches(|c: char| c == ' ' || c.is_ascii_control())
            .to_owned()
    };
    // MariaDB's rules for names: not empty, not ending with a space, no NUL, only characters of
    // the Basic Multilingual Plane, and at most 256 characters for a column alias.
    let names: Vec<&String> = batch
        .iter()
        .filter(|text| {
            !reported(text).is_empty()
                && !text.ends_with(' ')
                && text.chars().count() <= 256
                && !text.chars().any(|c| c == '\0' || c > '\u{ffff}')
        })
        .collect();
    if names.is_empty() {
        return;
    }
    let statement = quoting_inputs::select_aliases(&names, quote_identifier);
    let row = sqlx::query(sqlx::AssertSqlSafe(statement))
        .fetch_one(&mut *connection)
        .await
        .unwrap_or_else(|error| panic!("a batch of identifiers: {error}"));
    let columns: Vec<&str> = row.columns().iter().map(Column::name).collect();
    quoting_inputs::assert_aliases(&columns, &names, reported, quote_identifier);
}
