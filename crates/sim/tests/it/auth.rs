//! Every request is checked as the API checks it: key, signature, UTF-8, method, rate limits.

use crate::*;
use sailbulk_sim::Route;

#[test]
fn a_wrong_signature_is_refused_with_401_and_error_5() {
    let sim = start();
    let reply = call_with(
        &sim,
        "GET",
        "/user",
        r#"{"id":"a@example.com"}"#,
        "not-the-secret",
    );
    reply.assert_error(401, 5);
    let reply = call_with(
        &sim,
        "POST",
        "/job",
        r#"{"job":"update","emails":"a@example.com"}"#,
        "x",
    );
    reply.assert_error(401, 5);
    // Nothing was created.
    assert!(sim.jobs().is_empty());
}

#[test]
fn a_wrong_api_key_is_refused_with_401_and_error_3() {
    let sim = start();
    let json_text = r#"{"id":"a@example.com"}"#;
    let sig = sign(SECRET, ["other-key", "json", json_text]);
    let query = form(&[
        ("api_key".into(), "other-key".into()),
        ("format".into(), "json".into()),
        ("json".into(), json_text.into()),
        ("sig".into(), sig),
    ]);
    let reply = exchange(
        sim.addr(),
        format!("GET /user?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(reply.assert_error(401, 3), "Invalid API key");
}

#[test]
fn missing_parameters_get_error_2() {
    let sim = start();
    let reply = exchange(
        sim.addr(),
        b"GET /user?format=json&json=%7B%7D HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        reply.assert_error(400, 2),
        "Missing required parameter: api_key"
    );
    let reply = exchange(
        sim.addr(),
        format!(
            "GET /user?api_key={KEY}&json=%7B%7D HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        reply.assert_error(400, 2),
        "Missing required parameter: sig"
    );
}

#[test]
fn a_json_payload_with_non_ascii_text_is_signed_as_sent() {
    let sim = start();
    // Raw UTF-8, and the same text with \u escapes and other spacing: each is signed as sent.
    for text in [
        r#"{"list":"Ünïcode Łódź 日本","vars":{"note":"zoë"}}"#,
        "{\"list\": \"\\u00dcn\\u00efcode \\u0141\\u00f3d\\u017a \\u65e5\\u672c\", \"vars\": {\"note\": \"zo\\u00eb\"}}",
    ] {
        call_with(&sim, "POST", "/list", text, SECRET).assert_ok();
    }
    let list = sim.list("Ünïcode Łódź 日本").unwrap();
    assert_eq!(list.vars["note"], "zoë");
    // A signature over other text than was sent fails.
    let pairs = signed(r#"{"list":"Zoë"}"#, SECRET);
    let mut tampered = pairs.clone();
    tampered[2].1 = r#"{"list":"Zoe"}"#.into();
    let body = form(&tampered);
    let reply = exchange(
        sim.addr(),
        format!("POST /list HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes(),
    )
    .unwrap();
    reply.assert_error(401, 5);
}

#[test]
fn flat_form_fields_are_signed_over_their_values() {
    let sim = start();
    // The API notes' third worked example: job=update, list=x -> "sjsonkupdatex" with key k.
    let sim_k = Sim::builder().api_key("k").api_secret("s").start().unwrap();
    let body = "api_key=k&format=json&job=update&list=x&sig=5e21f66c7fd70adbaa49728364ff3e72";
    let reply = exchange(
        sim_k.addr(),
        format!("POST /job HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes(),
    )
    .unwrap();
    // Signed correctly; refused only because an update needs a source.
    assert_eq!(
        reply.assert_error(400, 99),
        "One of the following parameters is required: emails, url, file, or query"
    );
    // Nested flat fields become the call's object.
    let values = ["update", "a@example.com", "gold", KEY, "json"];
    let sig = sign(SECRET, values);
    let body = format!(
        "api_key={KEY}&format=json&job=update&emails=a%40example.com&update%5Bvars%5D%5Btier%5D=gold&sig={sig}"
    );
    let reply = exchange(
        sim.addr(),
        format!("POST /job HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes(),
    )
    .unwrap();
    let id = reply.assert_ok()["job_id"].as_str().unwrap().to_string();
    wait_job(&sim, &id);
    assert_eq!(
        sim.user("email", "a@example.com").unwrap().vars["tier"],
        "gold"
    );
}

#[test]
fn a_value_that_is_not_utf8_gets_error_6() {
    let sim = start();
    let query = format!("api_key={KEY}&format=json&json=%7B%22id%22%3A%22%FF%22%7D&sig=0");
    let reply = exchange(
        sim.addr(),
        format!("GET /user?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    reply.assert_error(400, 6);
}

#[test]
fn unknown_methods_and_actions_get_their_errors() {
    let sim = start();
    let query = form(&signed("{}", SECRET));
    let reply = exchange(
        sim.addr(),
        format!("PUT /job?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    reply.assert_error(405, 1);
    call(&sim, "DELETE", "/job", &json!({"job_id": "x"})).assert_error(405, 1);
    call(&sim, "POST", "/user", &json!({"id": "a@example.com"})).assert_error(405, 1);
    let reply = call(&sim, "GET", "/blast", &json!({}));
    reply.assert_error(404, 99);
    assert!(reply.message().contains("/blast"));
    // A format other than json.
    let sig = sign(SECRET, [KEY, "xml", "{}"]);
    let reply = exchange(
        sim.addr(),
        format!("GET /user?api_key={KEY}&format=xml&json=%7B%7D&sig={sig} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    reply.assert_error(400, 99);
}

#[test]
fn every_answer_carries_the_rate_limit_headers() {
    let sim = builder()
        .rate_limit(Route::new("GET", "/user"), 3)
        .start()
        .unwrap();
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let reply = call(&sim, "GET", "/user", &json!({"id": "nobody@example.com"}));
        reply.assert_error(400, 99);
        assert_eq!(reply.header("X-Rate-Limit-Limit"), Some("3"));
        remaining.push(reply.header("X-Rate-Limit-Remaining").unwrap().to_string());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let reply = call(&sim, "GET", "/user", &json!({"id": "nobody@example.com"}));
    assert_eq!(reply.assert_error(429, 43), "Too many requests");
    let reset: u64 = reply.header("X-Rate-Limit-Reset").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(reset > now && reset <= now + 61, "{reset} vs {now}");
    assert!(reply.header("Retry-After").is_none());
    // Other routes have their own window; POST /job defaults to 40 a minute.
    let reply = call(&sim, "POST", "/job", &json!({"job": "update"}));
    assert_eq!(reply.header("X-Rate-Limit-Limit"), Some("40"));
    let reply = call(&sim, "GET", "/list", &json!({}));
    assert_eq!(reply.header("X-Rate-Limit-Limit"), Some("1000"));
}

#[test]
fn keep_alive_connections_serve_several_requests() {
    let sim = start();
    let mut stream = TcpStream::connect(sim.addr()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for i in 0..3 {
        let query = form(&signed(&format!(r#"{{"id":"u{i}@example.com"}}"#), SECRET));
        write!(stream, "GET /user?{query} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let reply = read_reply(&mut reader).unwrap();
        assert_eq!(reply.assert_error(400, 99), "User not found");
    }
    // Chunked bodies are read too.
    let body = form(&signed(r#"{"list":"Chunked"}"#, SECRET));
    let (a, b) = body.split_at(body.len() / 2);
    write!(
        stream,
        "POST /list HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    )
    .unwrap();
    read_reply(&mut reader).unwrap().assert_ok();
    assert!(sim.list("Chunked").is_some());
}
