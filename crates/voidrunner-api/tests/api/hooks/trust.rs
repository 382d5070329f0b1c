//! The trust model: a fork pull request that rewrites the CI directory gets the base branch's
//! workflows and CI code and no secrets (unless the repository allows fork secrets).

use super::*;
use crate::helpers::backend_tests;

backend_tests!(fork_pull_request_gets_the_base_ci_and_no_secrets,);

async fn fork_pull_request_gets_the_base_ci_and_no_secrets(b: Backend) {
    let app = spawn(&b).await;
    let user = app.user().await;
    let repo = Repo::new();
    register(&app, &user, "github", "acme/app", &repo.url, false).await;
    let base = repo.head();
    // The fork rewrites the CI directory: its own check job, a new workflow, a new marker.
    git(&repo.work, &["checkout", "-q", "-b", "evil"]);
    let head = repo.commit_push(
        &[
            (".voidrunner/jobs/check.yaml", "name: check\nsecrets: [DEPLOY_TOKEN]\nsteps:\n  - {name: s, command: 'echo $DEPLOY_TOKEN'}\n"),
            (".voidrunner/workflows/evil.yaml", "name: evil\non: {events: [pull_request_opened]}\njobs:\n  x: {job: {name: x, steps: [{name: s, command: 'env'}]}}\n"),
            (".voidrunner/workflows/pr.yaml", "name: pr-check\non: {events: [pull_request_opened]}\njobs:\n  check: {job: {name: check, steps: [{name: s, command: 'env'}]}}\n"),
            (".voidrunner/marker.txt", "HEAD-EVIL\n"),
            ("src/app.txt", "pwned\n"),
        ],
        "refs/pull/5/head",
    );
    // A head commit that is not the pull request's: refused, nothing recorded.
    let (s, v) = github(
        &app,
        "pull_request",
        "fork-bad",
        &pr_body("acme/app", "evil/app", 5, &base, &base),
        SECRET,
    )
    .await;
    assert_eq!(s, 422, "{v}");
    // A base commit that is not on the target branch (the head itself): refused.
    let (s, v) = github(
        &app,
        "pull_request",
        "fork-bad2",
        &pr_body("acme/app", "evil/app", 5, &head, &head),
        SECRET,
    )
    .await;
    assert_eq!(s, 422, "{v}");

    let (s, v) = github(
        &app,
        "pull_request",
        "fork-1",
        &pr_body("acme/app", "evil/app", 5, &base, &head),
        SECRET,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let ws = started(&app, &v).await;
    assert_eq!(
        names(&ws),
        ["pr-check"],
        "the base branch's workflows only: {v}"
    );
    let w = &ws[0];
    assert!(!w.trusted);
    assert_eq!(v["summary"]["trusted"], false);
    assert!(
        app.store
            .workflow_secrets(w.id)
            .await
            .expect("secrets")
            .is_empty()
    );
    assert!(
        w.files["jobs/check.yaml"].contains("base-check"),
        "{:?}",
        w.files
    );
    assert!(!w.files.contains_key("workflows/evil.yaml"));
    let nodes = app
        .store
        .workflow_nodes(Scope::All, w.id)
        .await
        .expect("nodes");
    let d = &nodes[0].definition;
    assert_eq!(d["source"]["ref"], head.as_str());
    assert_eq!(d["ci_source"]["ref"], base.as_str());
    assert!(
        d["steps"][0]["command"]
            .as_str()
            .expect("cmd")
            .contains("base-check"),
        "{d}"
    );
    assert!(
        d.get("secrets").is_none() || d["secrets"] == json!([]),
        "{d}"
    );
    assert_eq!(d["env"]["VOIDRUNNER_TRUSTED"], "false");
    assert!(!d.to_string().contains(TOKEN));

    // The same fork with the repository's policy allowing fork secrets: trusted.
    let other = app.user().await;
    register(&app, &other, "github", "acme/trusting", &repo.url, true).await;
    let (s, v) = github(
        &app,
        "pull_request",
        "fork-2",
        &pr_body("acme/trusting", "evil/app", 5, &base, &head),
        SECRET,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let ws = started(&app, &v).await;
    assert!(ws[0].trusted);
    assert_eq!(
        app.store
            .workflow_secrets(ws[0].id)
            .await
            .expect("secrets")
            .len(),
        1
    );
}
