//! The protocol's scenario suite, unchanged, through the AWS SDK adapter against moto: the same
//! assertions the unit tests make against the strict in-memory store.

use rotation_tests::secrets_manager::{MotoScenarioHarness, MotoSecretsManager};
use rotation_tests::stack;

rotation_testkit::protocol_scenarios!(MotoScenarioHarness::new(
    MotoSecretsManager::connect(&stack::moto().await.endpoint()).await
));
