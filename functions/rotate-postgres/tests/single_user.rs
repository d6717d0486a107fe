//! What only PostgreSQL has, for single user: role names quoted as identifiers, passwords sent
//! as SCRAM verifiers (never in clear to the statement log), and the quoting functions checked
//! by the server itself. The scenarios every engine shares are in `conformance.rs`.

mod support;

use rotate_postgres::sql::{quote_identifier, quote_literal};
use rotation_tests::conformance::{rotate_and_check, unique, DatabaseUnderTest, Fixture, User};
use rotation_tests::leaks::assert_no_secret_in;
use rotation_tests::quoting_inputs;
use sqlx::{Column, Connection, PgConnection, Row};
use support::{superuser, text_rows, Postgres};

/// What a rotation may not change, of the given roles and the superuser, and every password
/// but the rotated roles', and PostgreSQL's predefined roles.
async fn database_snapshot(all: &[String], rotated: &[String]) -> Vec<String> {
    let mut names = all.to_vec();
    names.push(Postgres.server().await.admin.to_owned());
    let mut rows = Postgres.privileges(&names).await;
    rows.extend(
        text_rows(
            "SELECT row_to_json(r)::text FROM (
                 SELECT rolname, rolsuper, rolcreaterole, rolcanlogin, rolbypassrls
                 FROM pg_roles WHERE rolname LIKE 'pg\\_%' ORDER BY rolname) r",
            &[],
        )
        .await,
    );
    let kept: Vec<String> = names
        .iter()
        .filter(|name| !rotated.contains(name))
        .cloned()
        .collect();
    rows.extend(
        text_rows(
            "SELECT row_to_json(r)::text FROM (
                 SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1)
                 ORDER BY rolname) r",
            &kept,
        )
        .await,
    );
    rows
}

#[tokio::test]
async fn hostile_role_names_and_passwords_rotate_and_nothing_else_in_the_database_changes() {
    // A canary an injection through any of the names below would drop or promote.
    let canary = User::create(&Postgres, "canary").await;
    let suffix = unique("");
    let hostile_password = "it's \"q\" \\ 100% $x; ok";
    let names = [
        format!("O'Brien \"Ops\"; 100% \\ ✓ Ünï{suffix}"),
        format!("x\"; DROP ROLE \"{}\"; --", canary.name),
        format!("it's'); ALTER ROLE \"{}\" SUPERUSER; --", canary.name),
    ];
    let mut roles = Vec::new();
    for name in &names {
        assert!(name.len() <= 63, "{name} fits PostgreSQL's limit");
        Postgres.create_user(name, hostile_password).await;
        roles.push(User {
            name: name.clone(),
            password: hostile_password.to_owned(),
        });
    }
    let mut all: Vec<String> = names.to_vec();
    all.push(canary.name.clone());
    let before = database_snapshot(&all, &names).await;

    // Passwords made only of punctuation for the first role, any character for the others.
    const PUNCTUATION_ONLY: &[(&str, &str)] = &[
        ("EXCLUDE_CHARACTERS", ""),
        ("EXCLUDE_NUMBERS", "true"),
        ("EXCLUDE_UPPERCASE", "true"),
        ("EXCLUDE_LOWERCASE", "true"),
    ];
    const ANYTHING: &[(&str, &str)] = &[("EXCLUDE_CHARACTERS", "")];
    let (first, second, third) = tokio::join!(
        Fixture::for_user(&Postgres, &roles[0], PUNCTUATION_ONLY),
        Fixture::for_user(&Postgres, &roles[1], ANYTHING),
        Fixture::for_user(&Postgres, &roles[2], ANYTHING)
    );
    let (first_passwords, second_passwords, third_passwords) = tokio::join!(
        rotate_and_check(&first, &roles[0], 3),
        rotate_and_check(&second, &roles[1], 3),
        rotate_and_check(&third, &roles[2], 3),
    );
    assert!(
        first_passwords[1..]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_punctuation())),
        "punctuation-only passwords"
    );

    let after = database_snapshot(&all, &names).await;
    assert_eq!(before, after, "only the rotated roles' passwords changed");
    assert_eq!(
        Postgres.login(&canary.name, &canary.password).await,
        rotation_tests::login::Login::Ok
    );

    let passwords: Vec<String> = first_passwords
        .into_iter()
        .chain(second_passwords)
        .chain(third_passwords)
        .collect();
    let log = Postgres.server_log().await;
    assert_no_secret_in(&log, &passwords, "the server's statement log");
    for fixture in [first, second, third] {
        assert_no_secret_in(&fixture.output(), &passwords, "the function's output");
        fixture.stop().await;
    }
    for role in roles {
        role.drop(&Postgres).await;
    }
    canary.drop(&Postgres).await;
}

#[tokio::test]
async fn the_server_statement_log_never_contains_a_new_password_in_plaintext() {
    let role = User::create(&Postgres, "logged").await;
    let fixture = Fixture::for_user(&Postgres, &role, &[("EXCLUDE_CHARACTERS", "")]).await;
    let passwords = rotate_and_check(&fixture, &role, 2).await;
    let log = Postgres.server_log().await;
    // The log does record the statements: the password change is there, as a verifier.
    let change = format!(
        "ALTER ROLE {} PASSWORD 'SCRAM-SHA-256$4096:",
        quote_identifier(&role.name)
    );
    assert_eq!(
        log.matches(&change).count(),
        2,
        "two password changes logged"
    );
    assert_no_secret_in(&log, &passwords, "the server's statement log");
    fixture.stop().await;
    role.drop(&Postgres).await;
}

/// The quoting functions, checked by the server itself with every seed of the quoting fuzz
/// targets and a few thousand generated hostile texts: it reads our literal back as the
/// original text (with either setting of standard_conforming_strings) and writes the same
/// literal with its own quote_literal; our identifier names a column as given, cut at the 63
/// bytes PostgreSQL keeps. A NUL, which PostgreSQL text cannot hold, fails the statement rather
/// than being read as a shorter text.
#[tokio::test]
async fn quoted_identifiers_and_literals_round_trip_through_the_server() {
    let hand_picked = [
        "plain",
        "App User",
        "a\"b",
        "o'brien",
        "back\\slash",
        "\\'",
        "100%_done; DROP ROLE postgres; --",
        "x\"; DROP ROLE postgres; --",
        "ünïcødé ✓ 角色",
        "$$ $tag$ ''",
        "tab\tnew\nline",
        " leading and trailing ",
        "",
    ];
    let inputs = quoting_inputs::with_seeds_and_generated(&hand_picked, 3000);
    let with_nul: Vec<&String> = inputs.iter().filter(|text| text.contains('\0')).collect();
    // Every text round-trips without its NULs; a few keep them, for the refusal below.
    let texts: Vec<String> = inputs.iter().map(|text| text.replace('\0', "")).collect();
    let mut connection = superuser().await;
    for standard_conforming_strings in ["on", "off"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET standard_conforming_strings = {standard_conforming_strings}"
        )))
        .execute(&mut connection)
        .await
        .expect("SET");
        // Batches keep it to a few dozen statements.
        for batch in quoting_inputs::batches(&texts, 250, 256 << 10) {
            literals_read_back(&mut connection, batch, standard_conforming_strings).await;
            identifiers_name_columns(&mut connection, batch).await;
        }
    }
    assert!(with_nul.len() >= 3, "the inputs hold texts with a NUL");
    for text in with_nul.into_iter().take(3) {
        let statement = format!("SELECT {}", quote_literal(text));
        let outcome = sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut connection)
            .await;
        assert!(outcome.is_err(), "{text:?} was accepted: {outcome:?}");
        // The refusal may be a protocol error that ends the session.
        connection = superuser().await;
    }
    let _ = connection.close().await;
}

/// `SELECT` of every literal of the batch, each beside its index and the server's own
/// `quote_literal` of what it read.
async fn literals_read_back(connection: &mut PgConnection, batch: &[String], mode: &str) {
    let rows: Vec<String> = batch
        .iter()
        .enumerate()
        .map(|(index, text)| format!("({index}, {})", quote_literal(text)))
        .collect();
    let statement = format!(
        "SELECT i, v, quote_literal(v) FROM (VALUES {}) AS t(i, v) ORDER BY i",
        rows.join(", ")
    );
    let read: Vec<(i32, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .fetch_all(&mut *connection)
        .await
        .unwrap_or_else(|error| panic!("a batch of literals ({mode}): {error}"));
    assert_eq!(read.len(), batch.len());
    for ((index, value, server), text) in read.into_iter().zip(batch) {
        let literal = quote_literal(text);
        assert_eq!(
            &value, text,
            "#{index} {literal} (standard_conforming_strings {mode})"
        );
        assert_eq!(literal, server, "{text:?}: PostgreSQL's quote_literal");
    }
}

/// One column per text of the batch, named with our quoted identifier; the server keeps a
/// name's first 63 bytes (whole characters), as it does for role names.
async fn identifiers_name_columns(connection: &mut PgConnection, batch: &[String]) {
    // A zero-length quoted identifier is a syntax error; `check_name` refuses empty names.
    let names: Vec<&String> = batch.iter().filter(|text| !text.is_empty()).collect();
    let statement = quoting_inputs::select_aliases(&names, quote_identifier);
    let row = sqlx::query(sqlx::AssertSqlSafe(statement))
        .fetch_one(&mut *connection)
        .await
        .unwrap_or_else(|error| panic!("a batch of identifiers: {error}"));
    let reported: Vec<&str> = row.columns().iter().map(Column::name).collect();
    let first_63_bytes = |name: &str| {
        let mut kept = name.len().min(63);
        while !name.is_char_boundary(kept) {
            kept -= 1;
        }
        name[..kept].to_owned()
    };
    quoting_inputs::assert_aliases(&reported, &names, first_63_bytes, quote_identifier);
}
