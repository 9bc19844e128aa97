//! Tests of the credential store.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

use super::*;
use crate::security::watched::RELOAD_CHECK_INTERVAL;

fn store_with_alice(dir: &Path) -> CredentialStore {
    let mut s = CredentialStore::load(dir.join("creds.json")).unwrap();
    s.upsert("alice", "secret-a", DEFAULT_ITERATIONS).unwrap();
    s
}

#[test]
fn missing_file_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let s = CredentialStore::load(dir.path().join("nope.json")).unwrap();
    assert_eq!(s.users().count(), 0);
    assert!(!s.verify_plain("alice", "x"));
}

#[test]
fn upsert_save_load_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store_with_alice(dir.path());
    s.upsert("bob", "secret-b", 5000).unwrap();
    s.save().unwrap();

    let path = dir.path().join("creds.json");
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("secret-a") && !text.contains("secret-b"));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = &json["users"]["bob"]["SCRAM-SHA-512"];
    assert_eq!(entry["iterations"], 5000);
    for field in ["salt", "stored_key", "server_key"] {
        assert!(entry[field].is_string(), "{field}");
    }

    let loaded = CredentialStore::load(&path).unwrap();
    assert_eq!(loaded.users().collect::<Vec<_>>(), ["alice", "bob"]);
    assert!(loaded.verify_plain("alice", "secret-a"));
    assert!(loaded.verify_plain("bob", "secret-b"));
    assert!(!loaded.verify_plain("alice", "secret-b"));
    assert!(!loaded.verify_plain("carol", "secret-a"));
    let c = loaded.get("bob", Mechanism::ScramSha256).unwrap();
    assert_eq!(c.salt().len(), SALT_LEN);
    assert_eq!(c.iterations(), 5000);
    assert_eq!(c.stored_key().len(), 32);
    assert_eq!(
        loaded
            .get("bob", Mechanism::ScramSha512)
            .unwrap()
            .server_key()
            .len(),
        64
    );
}

#[test]
fn refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = CredentialStore::empty(dir.path().join("c.json"));
    assert_eq!(
        s.upsert("alice", "pw", 4095),
        Err(CredentialError::Iterations { iterations: 4095 })
    );
    assert_eq!(
        s.upsert("alice", "pw", MAX_ITERATIONS + 1),
        Err(CredentialError::Iterations {
            iterations: MAX_ITERATIONS + 1
        })
    );
    assert_eq!(
        s.upsert("alice", "", 4096),
        Err(CredentialError::EmptyPassword)
    );
    assert!(matches!(
        s.upsert("alice", &"p".repeat(MAX_PASSWORD_LEN + 1), 4096),
        Err(CredentialError::PasswordTooLong { .. })
    ));
    assert_eq!(
        s.upsert("ANONYMOUS", "pw", 4096),
        Err(CredentialError::ReservedUser)
    );
    assert!(matches!(
        s.upsert("a b", "pw", 4096),
        Err(CredentialError::InvalidUser(_))
    ));
    assert!(matches!(
        ScramCredential::from_parts(
            Mechanism::ScramSha256,
            vec![1; 16],
            4096,
            vec![0; 31],
            vec![0; 32]
        ),
        Err(CredentialError::Malformed { .. })
    ));
    assert_eq!(s.users().count(), 0);
}

#[test]
fn remove_and_users() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = CredentialStore::empty(dir.path().join("c.json"));
    let cred = ScramCredential::from_parts(
        Mechanism::ScramSha256,
        vec![1; 16],
        4096,
        vec![0; 32],
        vec![0; 32],
    )
    .unwrap();
    s.insert("x", Mechanism::ScramSha256, cred.clone()).unwrap();
    s.insert("y", Mechanism::ScramSha256, cred).unwrap();
    assert_eq!(s.users().collect::<Vec<_>>(), ["x", "y"]);
    assert!(s.contains("x"));
    assert!(s.remove("x"));
    assert!(!s.remove("x"));
    assert_eq!(s.users().collect::<Vec<_>>(), ["y"]);
}

#[test]
fn unknown_user_gets_a_stable_fake_credential() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_with_alice(dir.path());
    s.save().unwrap();
    for m in Mechanism::ALL {
        let real = s.lookup("alice", m);
        assert!(real.known);
        let fake = s.lookup("mallory", m);
        assert!(!fake.known);
        assert_eq!(fake.credential.salt().len(), real.credential.salt().len());
        assert_eq!(fake.credential.iterations(), real.credential.iterations());
        assert_eq!(fake.credential.stored_key().len(), m.digest_len());
        // The same across calls and across a reload of the file.
        let again = CredentialStore::load(s.path())
            .unwrap()
            .lookup("mallory", m);
        assert_eq!(again.credential, fake.credential);
        // Different users, different salts.
        assert_ne!(s.lookup("eve", m).credential.salt(), fake.credential.salt());
    }
}

#[test]
fn broken_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    fs::write(&path, "{not json").unwrap();
    assert!(matches!(
        CredentialStore::load(&path),
        Err(StoreError::Parse { .. })
    ));

    let s = store_with_alice(dir.path());
    s.save().unwrap();
    let good = fs::read_to_string(s.path()).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&good).unwrap();
    json["users"]["alice"]["SCRAM-SHA-256"]["iterations"] = 10.into();
    fs::write(s.path(), json.to_string()).unwrap();
    assert!(matches!(
        CredentialStore::load(s.path()),
        Err(StoreError::Invalid { .. })
    ));
}

#[test]
fn shared_store_reloads_and_keeps_old_on_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds.json");
    let shared = SharedCredentials::open(&path).unwrap();
    assert_eq!(shared.get().users().count(), 0);

    let mut other = CredentialStore::load(&path).unwrap();
    other.upsert("alice", "pw", 4096).unwrap();
    other.save().unwrap();
    let t = Instant::now() + RELOAD_CHECK_INTERVAL;
    assert!(shared.get_at(t).contains("alice"));

    fs::write(&path, "garbage").unwrap();
    let t = t + RELOAD_CHECK_INTERVAL;
    assert!(shared.get_at(t).contains("alice"), "old contents kept");

    shared
        .update(|s| s.upsert("bob", "pw", 4096))
        .unwrap()
        .unwrap();
    let reread = CredentialStore::load(&path).unwrap();
    assert!(reread.contains("alice") && reread.contains("bob"));
}

#[test]
fn fake_credential_takes_the_most_common_iterations() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = CredentialStore::empty(dir.path().join("c.json"));
    let m = Mechanism::ScramSha256;
    let cred = |iterations| {
        ScramCredential::from_parts(m, vec![7; SALT_LEN], iterations, vec![0; 32], vec![0; 32])
            .unwrap()
    };
    assert_eq!(
        s.lookup("ghost", m).credential.iterations(),
        DEFAULT_ITERATIONS
    );
    s.insert("a", m, cred(8192)).unwrap();
    s.insert("b", m, cred(8192)).unwrap();
    s.insert("c", m, cred(4096)).unwrap();
    assert_eq!(s.lookup("ghost", m).credential.iterations(), 8192);
    s.remove("a");
    s.remove("b");
    assert_eq!(s.lookup("ghost", m).credential.iterations(), 4096);
    // SCRAM-SHA-512 has no credentials: the default.
    assert_eq!(
        s.lookup("ghost", Mechanism::ScramSha512)
            .credential
            .iterations(),
        DEFAULT_ITERATIONS
    );
}
