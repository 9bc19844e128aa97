//! Tests of ACL parsing, the authorizer's rules and the ACL store.

use std::fs;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::security::watched::Watched;

fn acl(s: &str) -> Acl {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn user(name: &str) -> Principal {
    Principal::user(name).unwrap()
}

fn decide(acls: &[&str], who: &str, op: Operation, rt: ResourceType, name: &str) -> Decision {
    let auth = Authorizer::new(vec![], acls.iter().map(|s| acl(s)).collect());
    auth.decide(&user(who), op, rt, name)
}

use Operation::*;
use ResourceType::*;

#[test]
fn text_form() {
    let a = acl("Allow User:alice Read Topic:orders");
    assert_eq!(a.principal, AclPrincipal::User(user("alice")));
    assert_eq!(
        (a.resource, a.pattern, a.operation, a.permission),
        (Topic, PatternType::Literal, Read, Permission::Allow)
    );
    assert_eq!(a.name, "orders");
    assert_eq!(
        a.to_string(),
        "Allow User:alice Read Topic:orders (literal)"
    );
    let d = acl("deny  User:*  describeconfigs  group:tmp- (prefixed)");
    assert_eq!(d.principal, AclPrincipal::Any);
    assert_eq!(
        d.to_string(),
        "Deny User:* DescribeConfigs Group:tmp- (prefixed)"
    );
    // A name may hold spaces, colons and what looks like a suffix.
    let odd = acl("Allow User:a Read Group:my group: x (prefixed) (literal)");
    assert_eq!(odd.name, "my group: x (prefixed)");
    assert_eq!(odd.to_string().parse::<Acl>().unwrap(), odd);

    for bad in [
        "",
        "Allow",
        "Allow User:alice Read",
        "Permit User:alice Read Topic:x",
        "Allow alice Read Topic:x",
        "Allow User:alice Eat Topic:x",
        "Allow User:alice Read Queue:x",
        "Allow User:alice Read Topic",
        "Allow User:alice Read Topic:",
        "Allow User:alice Read Topic:* (prefixed)",
        "Allow User:alice Read Topic:a\u{7}b",
    ] {
        assert!(bad.parse::<Acl>().is_err(), "{bad:?}");
    }
}

#[test]
fn json_form() {
    let a = acl("Allow User:alice Read Topic:orders");
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(
        json,
        r#"{"principal":"User:alice","resource":"Topic","pattern":"Literal","name":"orders","operation":"Read","permission":"Allow"}"#
    );
    assert_eq!(serde_json::from_str::<Acl>(&json).unwrap(), a);
    let bad = json.replace("orders", "");
    assert!(serde_json::from_str::<Acl>(&bad).is_err());
}

#[test]
fn allow_then_deny_by_default() {
    let acls = ["Allow User:alice Read Topic:orders"];
    let d = decide(&acls, "alice", Read, Topic, "orders");
    assert!(d.allowed);
    assert_eq!(
        d.reason,
        "allowed by Allow User:alice Read Topic:orders (literal)"
    );
    for (who, op, rt, name) in [
        ("bob", Read, Topic, "orders"),
        ("alice", Write, Topic, "orders"),
        ("alice", Read, Topic, "orders2"),
        ("alice", Read, Group, "orders"),
    ] {
        let d = decide(&acls, who, op, rt, name);
        assert!(!d.allowed, "{who} {op} {rt}:{name}");
        assert_eq!(d.reason, "denied: no ACL matches (deny by default)");
    }
    assert!(!decide(&[], "alice", Describe, Cluster, "kafka-cluster").allowed);
}

#[test]
fn implied_operations() {
    for op in [Read, Write, Delete, Alter] {
        let rule = format!("Allow User:alice {op} Topic:t");
        assert!(
            decide(&[&rule], "alice", Describe, Topic, "t").allowed,
            "{op} implies Describe"
        );
    }
    for op in [Create, DescribeConfigs, AlterConfigs] {
        let rule = format!("Allow User:alice {op} Topic:t");
        assert!(
            !decide(&[&rule], "alice", Describe, Topic, "t").allowed,
            "{op} does not imply Describe"
        );
    }
    assert!(
        decide(
            &["Allow User:alice AlterConfigs Topic:t"],
            "alice",
            DescribeConfigs,
            Topic,
            "t"
        )
        .allowed
    );
    assert!(
        !decide(
            &["Allow User:alice DescribeConfigs Topic:t"],
            "alice",
            AlterConfigs,
            Topic,
            "t"
        )
        .allowed
    );
    assert!(
        !decide(
            &["Allow User:alice Describe Topic:t"],
            "alice",
            Read,
            Topic,
            "t"
        )
        .allowed
    );
    for op in Operation::ALL_VALUES {
        assert!(
            decide(&["Allow User:alice All Topic:t"], "alice", *op, Topic, "t").allowed,
            "All allows {op}"
        );
        assert!(
            !decide(
                &[
                    "Allow User:alice All Topic:t",
                    "Deny User:alice All Topic:t"
                ],
                "alice",
                *op,
                Topic,
                "t"
            )
            .allowed
        );
    }
}

#[test]
fn deny_wins() {
    let acls = [
        "Allow User:* All Topic:*",
        "Allow User:alice Write Topic:secret",
        "Deny User:alice Write Topic:sec (prefixed)",
    ];
    let d = decide(&acls, "alice", Write, Topic, "secret");
    assert!(!d.allowed);
    assert_eq!(
        d.reason,
        "denied by Deny User:alice Write Topic:sec (prefixed)"
    );
    assert!(decide(&acls, "bob", Write, Topic, "secret").allowed);
    // A Deny names its operation only: Deny Write does not deny Describe.
    assert!(decide(&acls, "alice", Describe, Topic, "secret").allowed);
    // Deny for everyone.
    let acls = ["Allow User:alice Read Topic:t", "Deny User:* Read Topic:t"];
    assert!(!decide(&acls, "alice", Read, Topic, "t").allowed);
}

#[test]
fn literal_prefixed_and_wildcard() {
    let prefixed = ["Allow User:alice Read Topic:logs- (prefixed)"];
    assert!(decide(&prefixed, "alice", Read, Topic, "logs-a").allowed);
    assert!(decide(&prefixed, "alice", Read, Topic, "logs-").allowed);
    assert!(!decide(&prefixed, "alice", Read, Topic, "logs").allowed);
    assert!(!decide(&prefixed, "alice", Read, Topic, "xlogs-a").allowed);

    let literal = ["Allow User:alice Read Topic:logs-"];
    assert!(!decide(&literal, "alice", Read, Topic, "logs-a").allowed);

    let wildcard = ["Allow User:alice Read Topic:*"];
    assert!(decide(&wildcard, "alice", Read, Topic, "anything").allowed);
    assert!(!decide(&wildcard, "alice", Read, Group, "anything").allowed);

    let anyone = ["Allow User:* Read Group:g"];
    assert!(decide(&anyone, "zed", Read, Group, "g").allowed);
    let anon = Principal::anonymous();
    let auth = Authorizer::new(vec![], vec![acl(anyone[0])]);
    assert!(auth.decide(&anon, Read, Group, "g").allowed);
}

#[test]
fn super_users_and_disabled() {
    let auth = Authorizer::new(vec![user("admin")], vec![acl("Deny User:* All Topic:*")]);
    assert!(auth.is_enabled());
    let d = auth.decide(&user("admin"), Delete, Topic, "x");
    assert!(d.allowed);
    assert_eq!(d.reason, "allowed: User:admin is a super user");
    assert!(!auth.decide(&user("alice"), Read, Topic, "x").allowed);

    let off = Authorizer::disabled();
    assert!(!off.is_enabled());
    let d = off.decide(&user("anyone"), AlterConfigs, Cluster, "kafka-cluster");
    assert!(d.allowed);
    assert_eq!(d.reason, "allowed: authorization is disabled");
}

#[test]
fn store_add_remove_list_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acls.json");
    let mut s = AclStore::load(&path).unwrap();
    assert!(s.acls().is_empty());
    let a = acl("Allow User:alice Read Topic:orders");
    let b = acl("Deny User:* Write Group:g- (prefixed)");
    let c = acl("Allow User:bob Describe Topic:orders");
    assert!(s.add(a.clone()).unwrap());
    assert!(!s.add(a.clone()).unwrap(), "no duplicates");
    assert!(s.add(b.clone()).unwrap());
    assert!(s.add(c.clone()).unwrap());
    let mut bad = a.clone();
    bad.name = String::new();
    assert!(s.add(bad).is_err());

    let alice = AclFilter {
        principal: Some(AclPrincipal::User(user("alice"))),
        ..AclFilter::default()
    };
    assert_eq!(s.list(&alice), [&a]);
    let topics = AclFilter {
        resource: Some(Topic),
        ..AclFilter::default()
    };
    assert_eq!(s.list(&topics), [&a, &c]);
    let anyone = AclFilter {
        principal: Some(AclPrincipal::Any),
        ..AclFilter::default()
    };
    assert_eq!(s.list(&anyone), [&b]);
    assert_eq!(s.list(&AclFilter::default()).len(), 3);

    let mut not_exact = a.clone();
    not_exact.operation = Write;
    assert!(!s.remove(&not_exact));
    assert!(s.remove(&c));
    s.save().unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["acls"][1]["pattern"], "Prefixed");
    assert_eq!(AclStore::load(&path).unwrap(), s);
}

#[test]
fn authorizer_follows_the_file_and_keeps_old_rules_on_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acls.json");
    let shared: SharedAcls = Watched::open_with_interval(&path, Duration::ZERO).unwrap();
    let auth = Authorizer::with_store(vec![], shared.clone());
    let alice = user("alice");
    assert!(!auth.decide(&alice, Read, Topic, "t").allowed);

    // Another process (the admin CLI) writes the file.
    let mut other = AclStore::load(&path).unwrap();
    other.add(acl("Allow User:alice Read Topic:t")).unwrap();
    other.save().unwrap();
    assert!(auth.decide(&alice, Read, Topic, "t").allowed);

    fs::write(&path, "{\"version\":1,\"acls\":[{\"oops\":true}]}").unwrap();
    assert!(
        auth.decide(&alice, Read, Topic, "t").allowed,
        "old rules kept"
    );

    shared
        .update(|s| s.add(acl("Deny User:alice Read Topic:t")))
        .unwrap()
        .unwrap();
    assert!(!auth.decide(&alice, Read, Topic, "t").allowed);
}

fn arb_acl() -> impl Strategy<Value = Acl> {
    let principal = prop_oneof![
        Just(AclPrincipal::Any),
        "[!-~]{1,20}"
            .prop_filter("not the wildcard", |n| n != "*")
            .prop_map(|n| AclPrincipal::User(Principal::user(n).unwrap())),
    ];
    let name = prop_oneof!["[ -~]{1,30}", "[a-zé ():*-]{1,12}"];
    (
        principal,
        proptest::sample::select(ResourceType::ALL_VALUES),
        proptest::sample::select(PatternType::ALL_VALUES),
        name,
        proptest::sample::select(Operation::ALL_VALUES),
        proptest::sample::select(Permission::ALL_VALUES),
    )
        .prop_map(
            |(principal, resource, pattern, name, operation, permission)| Acl {
                principal,
                resource,
                pattern,
                name,
                operation,
                permission,
            },
        )
        .prop_filter("valid", |a| a.validate().is_ok())
}

proptest! {
    #[test]
    fn display_parse_round_trip(a in arb_acl()) {
        let text = a.to_string();
        prop_assert_eq!(text.parse::<Acl>(), Ok(a.clone()));
        let json = serde_json::to_string(&a).unwrap();
        prop_assert_eq!(serde_json::from_str::<Acl>(&json).unwrap(), a);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,60}") {
        let _ = s.parse::<Acl>();
    }
}
