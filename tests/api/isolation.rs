//! Tenancy: every user sees only their own vault, through every tool and every session.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn three_users_each_see_only_their_own_notes() {
    let app = spawn_app().await;
    let users = ["alice", "bob", "carol"];
    let mut sessions = Vec::new();
    for u in users {
        let t = app.token(u);
        let s = app.session(&t).await;
        app.ok(
            &t,
            &s,
            "write_note",
            json!({"path":"shared-name.md","body":format!("secret of {u} sharedword #tag-{u}")}),
        )
        .await;
        app.ok(
            &t,
            &s,
            "write_note",
            json!({"path":format!("{u}-only.md"),"body":"links to [[shared-name]] sharedword"}),
        )
        .await;
        sessions.push((u, t, s));
    }
    for (u, t, s) in &sessions {
        let list = app.ok(t, s, "list_notes", json!({})).await;
        let mut paths: Vec<_> = list["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["path"].as_str().unwrap().to_string())
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            vec![format!("{u}-only.md"), "shared-name.md".to_string()],
            "{u}"
        );
        let read = app
            .ok(t, s, "read_note", json!({"path":"shared-name.md"}))
            .await;
        assert_eq!(read["body"], format!("secret of {u} sharedword #tag-{u}"));
        for other in users.iter().filter(|o| *o != u) {
            assert_eq!(
                app.err_code(
                    t,
                    s,
                    "read_note",
                    json!({"path":format!("{other}-only.md")})
                )
                .await,
                "not_found"
            );
            assert_eq!(
                app.err_code(
                    t,
                    s,
                    "read_note",
                    json!({"path":format!("../{other}/shared-name.md")})
                )
                .await,
                "invalid_path"
            );
        }
        let found = app
            .ok(t, s, "search_notes", json!({"query":"sharedword"}))
            .await;
        let mut hits = hit_paths(&found);
        hits.sort();
        assert_eq!(
            hits,
            vec![format!("{u}-only.md"), "shared-name.md".to_string()],
            "{u}"
        );
        let secret = app
            .ok(t, s, "search_notes", json!({"query":"secret"}))
            .await;
        assert!(secret["results"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains(u));
        let back = app
            .ok(t, s, "get_backlinks", json!({"path":"shared-name.md"}))
            .await;
        assert_eq!(
            back["backlinks"],
            json!([{"path":format!("{u}-only.md"),"title":format!("{u}-only"),"version":1,"size":back["backlinks"][0]["size"],"updated":back["backlinks"][0]["updated"]}])
        );
        let tags = app.ok(t, s, "get_tags", json!({})).await;
        assert_eq!(tags["tags"], json!([{"tag":format!("tag-{u}"),"count":1}]));
    }
}

#[tokio::test]
async fn another_users_session_id_is_404() {
    let app = spawn_app().await;
    let alice = app.token("alice");
    let bob = app.token("bob");
    let alice_sid = app.session(&alice).await;
    app.session(&bob).await;
    let resp = app
        .post(&bob, Some(&alice_sid))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_notes","arguments":{}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let del = app
        .client
        .delete(format!("{}/mcp", app.base))
        .bearer_auth(&bob)
        .header("mcp-session-id", &alice_sid)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NOT_FOUND);
    // Alice's session is untouched by Bob's attempts.
    assert_eq!(
        app.rpc(&alice, &alice_sid, "ping", json!({})).await["result"],
        json!({})
    );
}
