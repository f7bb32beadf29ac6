//! Update and import jobs: sources, validation, background processing, postbacks.

use crate::*;
use sailbulk_sim::{sign, PostbackReceiver};

const FILE: &str = concat!(
    "{\"email\":\"ian@example.com\",\"vars\":{\"name\":\"Ian\",\"tier\":\"gold\"},\"lists\":{\"Employees\":1}}\n",
    "{\"email\":\"zoe@example.com\",\"vars\":{\"name\":\"Zoë Łódź\"},\"optout\":\"basic\"}\n",
    "\n",
    "{\"email\":\"not-an-email\"}\n",
    "{\"id\":\"12\",\"key\":\"extid\",\"vars\":{\"1color\":\"red\"}}\n",
    "{\"id\":\"12\",\"key\":\"extid\",\"keys\":{\"sms\":\"+15550100\"},\"signup_date\":\"1987-08-01\"}\r\n",
    "{\"email\":\"ian@example.com\",\"lists\":{\"Employees\":0,\"Alumni\":1},\"delete_vars\":[\"tier\"]}\n",
);

#[test]
fn an_update_file_is_applied_line_by_line_with_the_validator_rules() {
    let sim = start();
    let status = run_job(&sim, &json!({"job": "update"}), Some(FILE.as_bytes()));
    assert_eq!(status["status"], "completed");
    assert_eq!(status["records"], 6);
    assert_eq!(status["applied"], 4);
    assert_eq!(status["created"], 3);
    assert_eq!(status["rejected"], 2);
    let errors = status["errors"].as_array().unwrap();
    assert_eq!(errors[0]["line"], 4);
    assert_eq!(errors[0]["code"], "invalid_email");
    assert_eq!(errors[1]["line"], 5);
    assert_eq!(errors[1]["code"], "var_name_leading_digit");
    assert!(status["start_time"].as_str().unwrap().ends_with("+0000"));
    assert!(status["end_time"].is_string());
    assert_eq!(status["filename"], "data.json");

    let ian = sim.user("email", "ian@example.com").unwrap();
    assert_eq!(
        ian.vars,
        json!({"name": "Ian"}).as_object().unwrap().clone()
    );
    assert_eq!(ian.lists.keys().collect::<Vec<_>>(), ["Alumni"]);
    let zoe = call(&sim, "GET", "/user", &json!({"id": "zoe@example.com"}));
    let zoe = zoe.assert_ok();
    assert_eq!(zoe["vars"]["name"], "Zoë Łódź");
    assert_eq!(zoe["optout_email"], "basic");
    assert_eq!(zoe["keys"]["email"], "zoe@example.com");
    let ext = call(
        &sim,
        "GET",
        "/user",
        &json!({"id": "12", "key": "extid", "fields": {"keys": 1}}),
    );
    let ext = ext.assert_ok();
    assert_eq!(ext["keys"]["sms"], "+15550100");
    assert!(ext.get("vars").is_none(), "fields selects: {ext}");
    assert_eq!(
        sim.user("sms", "+15550100").unwrap().signup_date.as_deref(),
        Some("1987-08-01")
    );
    assert!(sim.user("email", "not-an-email").is_none());
    // Lists named in a file are created; the list count reads the members.
    assert_eq!(sim.list_count("Alumni"), 1);
    assert_eq!(sim.list_count("Employees"), 0);
    // The file was kept, byte for byte.
    let files = sim.received_files();
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::read(&files[0].path).unwrap(), FILE.as_bytes());
}

#[test]
fn jobs_go_from_pending_to_running_to_completed() {
    let sim = builder()
        .job_delay(Duration::from_millis(300))
        .start()
        .unwrap();
    let reply = call(
        &sim,
        "POST",
        "/job",
        &json!({"job": "update", "emails": "a@example.com"}),
    );
    let body = reply.assert_ok();
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    assert_eq!(body["name"], "Bulk Update: emails");
    let id = body["job_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 24);
    let mut seen = vec![];
    for _ in 0..500 {
        let status = call(&sim, "GET", "/job", &json!({ "job_id": id })).assert_ok()["status"]
            .as_str()
            .unwrap()
            .to_string();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "completed" {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(seen, ["pending", "running", "completed"]);
}

#[test]
fn an_update_job_applies_its_update_object_to_emails_and_to_a_query() {
    let sim = start();
    let status = run_job(
        &sim,
        &json!({"job": "update", "emails": "a@example.com, b@example.com,bad@", "update": {"vars": {"plan": "pro"}, "lists": {"Main": 1}, "optout": "none"}}),
        None,
    );
    assert_eq!(
        (status["applied"].as_u64(), status["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(sim.list_count("Main"), 2);
    // A source_list with no criteria selects that list's members.
    let status = run_job(
        &sim,
        &json!({"job": "update", "query": {"source_list": "Main"}, "update": {"lists": {"Main-copy": 1}, "delete_vars": ["plan"], "optout": "blast"}}),
        None,
    );
    assert_eq!(status["applied"], 2);
    assert_eq!(sim.list_count("Main-copy"), 2);
    let a = sim.user("email", "a@example.com").unwrap();
    assert!(a.vars.is_empty());
    assert_eq!(a.optout, "blast");
    // An email file with an update object.
    let status = run_job(
        &sim,
        &json!({"job": "update", "update": {"vars": {"vip": true}}}),
        Some(b"c@example.com\r\nnot an email\n\na@example.com"),
    );
    assert_eq!(
        (status["applied"].as_u64(), status["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        sim.user("email", "c@example.com").unwrap().vars["vip"],
        true
    );
}

#[test]
fn update_jobs_are_refused_as_the_job_update_page_documents() {
    let sim = start();
    let source = "One of the following parameters is required: emails, url, file, or query";
    for params in [
        json!({"job": "update"}),
        json!({"job": "update", "emails": "a@example.com", "query": {"source_list": "Main"}}),
    ] {
        assert_eq!(
            call(&sim, "POST", "/job", &params).assert_error(400, 99),
            source
        );
    }
    // A file and another source.
    let reply = upload_bytes(
        &sim,
        &json!({"job": "update", "emails": "a@example.com"}),
        "f.json",
        b"a@example.com\n",
    )
    .unwrap();
    assert_eq!(reply.assert_error(400, 99), source);
    assert!(sim.received_files().is_empty());
    assert_eq!(
        call(
            &sim,
            "POST",
            "/job",
            &json!({"job": "update", "url": "nope"})
        )
        .assert_error(400, 99),
        "Invalid URL: nope"
    );
    let reply = call(
        &sim,
        "POST",
        "/job",
        &json!({"job": "update", "url": "https://example.com/feed"}),
    );
    assert!(reply.assert_error(400, 99).contains("offline"));
    assert_eq!(
        call(&sim, "POST", "/job", &json!({"job": "update", "emails": "a@example.com", "update": {"lists": {"Big $ale": 1}}})).assert_error(400, 99),
        "List name cannot contain a $ character"
    );
    assert_eq!(
        call(
            &sim,
            "POST",
            "/job",
            &json!({"job": "update", "emails": "a@example.com", "update": {"lists": {"   ": 1}}})
        )
        .assert_error(400, 99),
        "List name:     failed validation"
    );
    for bad in [
        json!({"optout": "sometimes"}),
        json!({"lists": {"Main": 2}}),
        json!({"vars": [1]}),
        json!({"delete_vars": "name"}),
    ] {
        call(
            &sim,
            "POST",
            "/job",
            &json!({"job": "update", "emails": "a@example.com", "update": bad}),
        )
        .assert_error(400, 99);
    }
    call(
        &sim,
        "POST",
        "/job",
        &json!({"job": "update", "query": {"source_list": "Nope"}}),
    )
    .assert_error(404, 15);
    call(&sim, "POST", "/job", &json!({"emails": "a@example.com"})).assert_error(400, 2);
    call(
        &sim,
        "POST",
        "/job",
        &json!({"job": "export_list_data", "list": "x"}),
    )
    .assert_error(400, 99);
    assert!(sim.jobs().is_empty());
}

#[test]
fn an_unknown_job_id_gets_error_99() {
    let sim = start();
    let reply = call(
        &sim,
        "GET",
        "/job",
        &json!({"job_id": "4dd58f036803fa3b5500000b"}),
    );
    assert_eq!(
        reply.assert_error(400, 99),
        "Invalid job_id: 4dd58f036803fa3b5500000b"
    );
    call(&sim, "GET", "/job", &json!({})).assert_error(400, 2);
}

#[test]
fn import_jobs_fill_a_list_from_emails_a_text_file_or_a_csv() {
    let sim = start();
    let status = run_job(
        &sim,
        &json!({"job": "import", "list": "Imported", "emails": "a@example.com,b@example.com,a@example.com"}),
        None,
    );
    assert_eq!(status["name"], "List Import: Imported");
    assert_eq!(status["list"], "Imported");
    assert_eq!(sim.list_count("Imported"), 2);
    let status = run_job(
        &sim,
        &json!({"job": "import", "list": "Text"}),
        Some(b"\xEF\xBB\xBFc@example.com\nd@example.com\r\nbroken\n"),
    );
    assert_eq!(
        (status["applied"].as_u64(), status["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(sim.list_count("Text"), 2);
    let csv = b"Name,EMAIL,plan\nAnn,ann@example.com,gold\n\"Lee, Jr\",lee@example.com,silver\nBob,,none\n";
    let status = run_job(&sim, &json!({"job": "import", "list": "Csv"}), Some(csv));
    assert_eq!(
        (status["applied"].as_u64(), status["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(status["errors"][0]["line"], 4);
    assert_eq!(sim.list_count("Csv"), 2);
    let list = call(&sim, "GET", "/list", &json!({"list": "Csv"}));
    assert_eq!(list.assert_ok()["count"], 2);
    assert_eq!(list.body["type"], "normal");
}

#[test]
fn import_jobs_are_refused_without_a_list_or_a_single_source() {
    let sim = start();
    assert_eq!(
        call(
            &sim,
            "POST",
            "/job",
            &json!({"job": "import", "emails": "a@example.com"})
        )
        .assert_error(400, 2),
        "Missing required parameter: list"
    );
    call(&sim, "POST", "/job", &json!({"job": "import", "list": "L"})).assert_error(400, 99);
    call(
        &sim,
        "POST",
        "/job",
        &json!({"job": "import", "list": "L$"}),
    )
    .assert_error(400, 99);
    let reply = upload_bytes(
        &sim,
        &json!({"job": "import", "list": "L", "emails": "a@example.com"}),
        "e.txt",
        b"a@example.com\n",
    )
    .unwrap();
    reply.assert_error(400, 99);
}

#[test]
fn uploads_over_the_documented_limits_are_refused() {
    let sim = start();
    let max = sailbulk_spec::JobKind::Import.max_file_bytes();
    // One byte over the import limit, refused while it streams; nothing is kept.
    let data = std::io::repeat(b'a').take(max + 1);
    let reply = upload(
        &sim,
        &json!({"job": "import", "list": "Big"}),
        "big.txt",
        data,
        max + 1,
    )
    .unwrap();
    assert!(
        reply.assert_error(400, 99).contains("10000000"),
        "{}",
        reply.message()
    );
    assert!(sim.jobs().is_empty());
    assert_eq!(std::fs::read_dir(sim.files_dir()).unwrap().count(), 0);
    // Exactly at the limit is accepted.
    let mut data = b"a@example.com\n".repeat((max / 14) as usize);
    data.resize(max as usize, b'\n');
    let reply = upload(
        &sim,
        &json!({"job": "import", "list": "Big"}),
        "big.txt",
        &data[..],
        max,
    )
    .unwrap();
    reply.assert_ok();
    // An update body that declares more than an update file may hold is refused before reading.
    let reply = exchange(
        sim.addr(),
        b"POST /job HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 9000000000\r\n\r\n",
    )
    .unwrap();
    reply.assert_error(400, 99);
}

#[test]
fn concurrent_uploads_each_become_a_job() {
    let sim = builder().job_workers(3).start().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let addr = sim.addr();
            std::thread::spawn(move || {
                let lines: String = (0..2000)
                    .map(|i| format!("{{\"email\":\"u{t}-{i}@example.com\",\"lists\":{{\"All\":1}},\"vars\":{{\"t\":{t}}}}}\n"))
                    .collect();
                let json_text = json!({"job": "update"}).to_string();
                let reply = upload_to(addr, &json_text, SECRET, &format!("part-{t}.json"), lines.as_bytes(), lines.len() as u64).unwrap();
                reply.assert_ok()["job_id"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let ids: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for id in &ids {
        let status = wait_job(&sim, id);
        assert_eq!(
            (status["status"].as_str(), status["applied"].as_u64()),
            (Some("completed"), Some(2000))
        );
    }
    assert_eq!(sim.list_count("All"), 16_000);
    let mut sums: Vec<_> = sim.received_files().into_iter().map(|f| f.sha256).collect();
    sums.sort();
    sums.dedup();
    assert_eq!(sums.len(), 8);
}

#[test]
fn keys_conflicts_are_refused_unless_merged() {
    let sim = start();
    let file = concat!(
        "{\"email\":\"a@example.com\",\"keys\":{\"extid\":\"7\"}}\n",
        "{\"email\":\"b@example.com\",\"keys\":{\"extid\":\"7\"}}\n",
        "{\"email\":\"b@example.com\",\"keys\":{\"extid\":\"7\"},\"keysconflict\":\"merge\"}\n",
    );
    let status = run_job(&sim, &json!({"job": "update"}), Some(file.as_bytes()));
    assert_eq!(status["errors"][0]["code"], "keys_conflict");
    assert_eq!(status["errors"][0]["line"], 2);
    assert_eq!(
        sim.user("extid", "7").unwrap().email.as_deref(),
        Some("b@example.com")
    );
    assert_eq!(sim.user("email", "a@example.com").unwrap().extid, None);
}

#[test]
fn a_finished_job_posts_its_signed_status_to_the_postback_url() {
    let receiver = PostbackReceiver::bind().unwrap();
    let url = format!("{}?x=1", receiver.url());
    let sim = start();
    let status = run_job(
        &sim,
        &json!({"job": "update", "emails": "a@example.com,bad", "postback_url": url, "report_email": "ops@example.com"}),
        None,
    );
    let postback = receiver
        .receive(Duration::from_secs(30))
        .unwrap()
        .expect("a postback");
    assert_eq!(
        (
            postback.method.as_str(),
            postback.path.as_str(),
            postback.query.as_str()
        ),
        ("POST", "/postback", "x=1")
    );
    let fields = postback.fields;
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("job_id"), status["job_id"].as_str());
    assert_eq!(get("status"), Some("completed"));
    assert_eq!(get("api_key"), Some(KEY));
    assert_eq!(get("errors[0][code]"), Some("invalid_email"));
    assert_eq!(get("report_email"), Some("ops@example.com"));
    // The signature holds over every field but sig, and fails when a field changes.
    let values: Vec<&str> = fields
        .iter()
        .filter(|(k, _)| k != "sig")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(get("sig").unwrap(), sign(SECRET, values.iter().copied()));
    let mut changed = values.clone();
    changed[0] = "tampered";
    assert_ne!(get("sig").unwrap(), sign(SECRET, changed));
    // The job records that the postback was delivered.
    for _ in 0..200 {
        if sim
            .job(status["job_id"].as_str().unwrap())
            .unwrap()
            .postback
            .is_some()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        sim.job(status["job_id"].as_str().unwrap())
            .unwrap()
            .postback
            .as_deref(),
        Some("sent: HTTP 200")
    );
}

#[test]
fn injected_job_failures_end_in_error_with_a_reason() {
    let sim = builder().fail_jobs(1).start().unwrap();
    let status = run_job(
        &sim,
        &json!({"job": "update", "emails": "a@example.com"}),
        None,
    );
    assert_eq!(status["status"], "error");
    assert!(status["reason"].as_str().unwrap().contains("fault"));
    let status = run_job(
        &sim,
        &json!({"job": "update", "emails": "a@example.com"}),
        None,
    );
    assert_eq!(status["status"], "completed");
}

#[test]
fn uploads_no_job_adopts_are_not_kept() {
    let sim = start();
    // A file sent with a call that is refused, or to another action, leaves nothing behind.
    let data = b"a@example.com\n";
    upload_bytes(
        &sim,
        &json!({"job": "update", "emails": "b@example.com"}),
        "a.txt",
        data,
    )
    .unwrap()
    .assert_error(400, 99);
    let reply = upload_to(
        sim.addr(),
        &json!({"list": "L"}).to_string(),
        SECRET,
        "a.txt",
        &data[..],
        14,
    );
    // A job call without `job`: the file was read, then the call refused.
    reply.unwrap().assert_error(400, 2);
    assert_eq!(std::fs::read_dir(sim.files_dir()).unwrap().count(), 0);
}

#[test]
fn null_sources_count_as_absent_and_a_one_column_csv_has_a_header() {
    let sim = start();
    let status = run_job(
        &sim,
        &json!({"job": "update", "emails": "a@example.com", "url": null, "query": null, "update": null}),
        None,
    );
    assert_eq!(status["applied"], 1);
    let status = run_job(
        &sim,
        &json!({"job": "import", "list": "One", "emails": null}),
        Some(b"Email\r\nx@example.com\ny@example.com\n"),
    );
    assert_eq!(
        (status["applied"].as_u64(), status["rejected"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(sim.list_count("One"), 2);
}
