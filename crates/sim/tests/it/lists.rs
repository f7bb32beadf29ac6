//! `/list` and `/user` as their pages document them.

use crate::*;

#[test]
fn a_natural_list_is_created_read_listed_and_deleted() {
    let sim = start();
    let reply = call(
        &sim,
        "POST",
        "/list",
        &json!({"list": "natural test list", "primary": 1, "vars": {"color": "blue"}, "public_name": "natural test list public name", "type": "natural"}),
    );
    let body = reply.assert_ok();
    assert_eq!(body["list"], "natural test list");
    assert_eq!(body["type"], "normal");
    assert_eq!(body["primary"], 1);
    assert_eq!(body["vars"]["color"], "blue");
    assert_eq!(body["list_id"].as_str().unwrap().len(), 24);
    assert!(
        body.get("create_time").is_none(),
        "a new list has no create_time: {body}"
    );
    // Saving it again returns create_time, as the page says for a list that is not new.
    let again = call(
        &sim,
        "POST",
        "/list",
        &json!({"list": "natural test list", "primary": 0}),
    );
    assert!(again.assert_ok()["create_time"].is_string());
    assert_eq!(again.body["vars"]["color"], "blue");

    let got = call(&sim, "GET", "/list", &json!({"list": "natural test list"}));
    let got = got.assert_ok();
    assert_eq!(got["count"], 0);
    assert_eq!(got["primary"], false);
    assert!(got.get("vars").is_none());
    let got = call(
        &sim,
        "GET",
        "/list",
        &json!({"list": "natural test list", "fields": {"vars": 1}}),
    );
    assert_eq!(got.assert_ok()["vars"]["color"], "blue");

    call(
        &sim,
        "POST",
        "/list",
        &json!({"list": "Second", "primary": 1}),
    )
    .assert_ok();
    let all = call(&sim, "GET", "/list", &json!({}));
    let names: Vec<_> = all.assert_ok()["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Second", "natural test list"]);
    let primary = call(&sim, "GET", "/list", &json!({"primary": 1}));
    assert_eq!(primary.assert_ok()["lists"].as_array().unwrap().len(), 1);

    let deleted = call(&sim, "DELETE", "/list", &json!({"list": "Second"}));
    assert_eq!(deleted.assert_ok(), &json!({"list": "Second", "ok": true}));
    assert_eq!(
        call(&sim, "DELETE", "/list", &json!({"list": "Second"})).assert_error(404, 15),
        "Unknown list: Second"
    );
    assert_eq!(
        call(&sim, "GET", "/list", &json!({"list": "Second"})).assert_error(404, 15),
        "Unknown list: Second"
    );
    assert_eq!(
        call(&sim, "DELETE", "/list", &json!({})).assert_error(400, 2),
        "Missing required parameter: list"
    );
}

#[test]
fn list_validations_answer_with_the_list_page_codes_and_texts() {
    let sim = start();
    let long_name = "abcdefghij".repeat(4);
    let long_value = "v".repeat(141);
    let many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("v{i}"), json!(i))).collect();
    let cases = [
        (json!({"list": "L", "primary": 2}), 200, 99, "Primary parameter must be 0 or 1".to_string()),
        (json!({"list": "L", "vars": many}), 200, 99, "The total number of vars cannot exceed 20".to_string()),
        (json!({"list": "L", "vars": {"1color": "x"}}), 200, 99, "The variable key name cannot start with a number - '1color'".to_string()),
        (json!({"list": "L", "vars": {"varName!": "x"}}), 200, 99, "The variable key must be combination of numbers/letters and underscore - 'varName!'".to_string()),
        (json!({"list": "L", "vars": {long_name.clone(): "x"}}), 200, 99, format!("The key name is too long '{long_name}', maximum is 32")),
        (json!({"list": "L", "vars": {"k": long_value.clone()}}), 200, 99, format!("The value for key 'k' is too long '{long_value}'. Maximum is 140")),
        (json!({"list": "L", "rename": "M"}), 403, 99, "This feature is no longer supported, please use the /job API to make List Rename calls".to_string()),
        (json!({"list": "!!!"}), 400, 99, "List name: !!! failed validation".to_string()),
        (json!({"list": "L", "query": {"source_list": "main"}}), 403, 99, "Cannot modify list query on natural list".to_string()),
        (json!({"primary": 1}), 400, 2, "Missing required parameter: list".to_string()),
    ];
    for (params, status, code, message) in cases {
        let reply = call(&sim, "POST", "/list", &params);
        assert_eq!(reply.assert_error(status, code), message, "{params}");
    }
    assert!(sim.lists().is_empty());
    // "!! bar/foo" is a valid name (API notes); a smart list cannot become natural.
    call(&sim, "POST", "/list", &json!({"list": "!! bar/foo"})).assert_ok();
    call(
        &sim,
        "POST",
        "/list",
        &json!({"list": "S", "type": "smart", "query": {"source_list": "main"}}),
    )
    .assert_ok();
    assert_eq!(
        call(
            &sim,
            "POST",
            "/list",
            &json!({"list": "S", "type": "natural"})
        )
        .assert_error(403, 99),
        "Cannot modify list type"
    );
    // copy_list copies a smart list, and only a smart list, to a name not taken.
    let copy = call(
        &sim,
        "POST",
        "/list",
        &json!({"list": "S", "copy_list": "S2"}),
    );
    assert_eq!(copy.assert_ok()["type"], "smart");
    assert_eq!(sim.list("S2").unwrap().query, sim.list("S").unwrap().query);
    assert_eq!(
        call(
            &sim,
            "POST",
            "/list",
            &json!({"list": "S", "copy_list": "S2"})
        )
        .assert_error(400, 99),
        "Error: New list name already exists"
    );
    assert_eq!(
        call(
            &sim,
            "POST",
            "/list",
            &json!({"list": "!! bar/foo", "copy_list": "C"})
        )
        .assert_error(400, 99),
        "Error: Copy list only supports smart list"
    );
}

#[test]
fn the_account_caps_lists_and_primary_lists() {
    let sim = builder()
        .rate_limit(sailbulk_sim::Route::any(), 10_000)
        .start()
        .unwrap();
    for i in 0..50 {
        call(
            &sim,
            "POST",
            "/list",
            &json!({"list": format!("P{i}"), "primary": 1}),
        )
        .assert_ok();
    }
    assert_eq!(
        call(&sim, "POST", "/list", &json!({"list": "P50", "primary": 1})).assert_error(200, 99),
        "You may only track up to 50 primary lists."
    );
    // Re-saving one of the 50 as primary is not a new primary list.
    call(&sim, "POST", "/list", &json!({"list": "P0", "primary": 1})).assert_ok();
    for i in 0..1950 {
        call(&sim, "POST", "/list", &json!({"list": format!("N{i}")})).assert_ok();
    }
    assert_eq!(sim.lists().len(), 2000);
    call(&sim, "POST", "/list", &json!({"list": "One too many"})).assert_error(400, 99);
    // An update line that would create a 2001st list is rejected, not applied.
    let status = run_job(
        &sim,
        &json!({"job": "update", "emails": "a@example.com", "update": {"lists": {"Another": 1}}}),
        None,
    );
    assert_eq!(status["rejected"], 1);
    assert_eq!(status["errors"][0]["code"], "too_many_lists");
}

#[test]
fn a_list_with_a_pending_job_cannot_be_deleted() {
    let sim = builder()
        .job_delay(Duration::from_secs(30))
        .start()
        .unwrap();
    call(&sim, "POST", "/list", &json!({"list": "Busy"})).assert_ok();
    call(
        &sim,
        "POST",
        "/job",
        &json!({"job": "import", "list": "Busy", "emails": "a@example.com"}),
    )
    .assert_ok();
    assert_eq!(
        call(&sim, "DELETE", "/list", &json!({"list": "Busy"})).assert_error(200, 99),
        "List Busy has a pending job and can't be deleted at this time"
    );
}

#[test]
fn an_unknown_user_is_error_99_user_not_found() {
    let sim = start();
    assert_eq!(
        call(&sim, "GET", "/user", &json!({"id": "ghost@example.com"})).assert_error(400, 99),
        "User not found"
    );
    call(&sim, "GET", "/user", &json!({})).assert_error(400, 2);
    call(&sim, "GET", "/user", &json!({"id": "1", "key": "phone"})).assert_error(400, 99);
}
