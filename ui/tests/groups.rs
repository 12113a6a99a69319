//! Groups through their pages: making one by form, adding, promoting and removing members,
//! giving an item to the group from a New form, a member editing it through the edit form, and
//! what a non-member sees and is told.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::StatusCode;
use support::{Browser, setup};

fn id_in(location: &str) -> String {
    location.rsplit('/').next().unwrap().to_owned()
}

/// What a page says went wrong (its alerts), for failure messages.
fn alerts(body: &str) -> String {
    body.match_indices("role=\"alert\"")
        .map(|(i, _)| body[i..].chars().take(300).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn did_of(b: &mut Browser) -> String {
    let account = b.get("/account").await.body;
    let at = account.find("href=\"/authors/did:key:").unwrap() + "href=\"/authors/".len();
    account[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_group_made_by_form_co_edits_its_artist_and_outsiders_are_refused() {
    let t = setup().await;
    let mut alice = Browser::new(&t.router);
    alice.sign_up("alice").await;
    let mut bob = Browser::new(&t.router);
    bob.sign_up("bob").await;
    let mut carol = Browser::new(&t.router);
    carol.sign_up("carol").await;
    let bob_did = did_of(&mut bob).await;

    // The nav links the groups; the list offers New group; visitors are asked to log in.
    let groups = alice.get("/groups").await;
    assert_eq!(groups.status, StatusCode::OK);
    assert!(groups.body.contains("<a href=\"/groups\">Groups</a>"));
    assert!(
        groups.body.contains(">New group<"),
        "{}",
        alerts(&groups.body)
    );
    assert!(groups.body.contains("You are in no group yet"));
    let anon = Browser::new(&t.router).get("/groups").await;
    assert_eq!(anon.status, StatusCode::OK);
    assert!(anon.body.contains("Log in to make a group"));
    assert_eq!(
        Browser::new(&t.router).get("/groups/new").await.status,
        StatusCode::SEE_OTHER
    );

    // A refused form keeps what was typed and says which field.
    let form = alice.get("/groups/new").await.body;
    for label in [">Name", ">Description", ">Members<", ">Create group<"] {
        assert!(form.contains(label), "{label}: {form}");
    }
    let bad = alice
        .post(
            "/groups/new",
            &[
                ("name", "Kitchen Band crew"),
                ("description", "We play <b>loud</b>."),
                ("members", "@nobody member"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("id=\"group-members-error\""),
        "{}",
        alerts(&bad.body)
    );
    assert!(bad.body.contains("neither a did:key nor an account"));
    assert!(bad.body.contains("value=\"Kitchen Band crew\""));
    assert!(bad.body.contains("We play &lt;b&gt;loud&lt;/b&gt;."));
    assert!(bad.body.contains("@nobody member</textarea>"));
    let bad_role = alice
        .post(
            "/groups/new",
            &[("name", "Kitchen Band crew"), ("members", "@bob boss")],
        )
        .await;
    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_role.body.contains("&quot;boss&quot; is not a role"));
    let no_name = alice.post("/groups/new", &[("name", "  ")]).await;
    assert_eq!(no_name.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_name.body.contains("Give the group a name."));

    let made = alice
        .post(
            "/groups/new",
            &[
                ("name", "Kitchen Band crew"),
                ("description", "We play <b>loud</b>."),
                ("members", ""),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", alerts(&made.body));
    let group_page = made.location().to_owned();
    assert!(group_page.starts_with("/groups/"));
    let group = id_in(&group_page);
    let page = alice.get(&group_page).await.body;
    assert!(page.contains("<h1>Kitchen Band crew</h1>"), "{page}");
    assert!(page.contains("We play &lt;b&gt;loud&lt;/b&gt;."));
    assert!(page.contains("@alice") && page.contains(">owner<"));
    assert!(page.contains(">Add member<") && page.contains(">Leave group<"));
    assert!(page.contains("Nothing yet."));
    // The generic record page of the group sends people here.
    let generic = alice.get(&format!("/core/groups/{group}")).await;
    assert_eq!(generic.location(), group_page);

    // Adding: a stranger is explained next to the form, what was typed kept; then bob.
    let unknown = alice
        .post(
            &format!("{group_page}/members"),
            &[("member", "@zed"), ("role", "admin")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown.body.contains("Not done: member: &quot;@zed&quot;"),
        "{}",
        alerts(&unknown.body)
    );
    assert!(unknown.body.contains("value=\"@zed\""));
    assert!(unknown.body.contains("<option value=\"admin\" selected>"));
    let added = alice
        .post(
            &format!("{group_page}/members"),
            &[("member", "@bob"), ("role", "member")],
        )
        .await;
    assert_eq!(
        added.status,
        StatusCode::SEE_OTHER,
        "{}",
        alerts(&added.body)
    );
    let page = alice.get(&group_page).await.body;
    assert!(page.contains("@bob") && page.contains(">member<"), "{page}");
    assert!(page.contains("aria-label=\"Remove @bob\""));
    let again = alice
        .post(
            &format!("{group_page}/members"),
            &[("member", "@bob"), ("role", "member")],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        again.body.contains("is already member"),
        "{}",
        alerts(&again.body)
    );
    // Bob sees it among his groups, and no member forms.
    let bobs = bob.get("/groups").await.body;
    let mine = bobs.find("Your groups").unwrap();
    let others = bobs.find("Other groups").unwrap();
    let at = bobs.find("Kitchen Band crew").unwrap();
    assert!(mine < at && at < others, "{bobs}");
    let page = bob.get(&group_page).await.body;
    assert!(!page.contains(">Add member<") && !page.contains(">Remove<"));
    assert!(page.contains(">Leave group<"));
    // Managing takes an owner or admin: bob's post is refused on the page, with why.
    let refused = bob
        .post(
            &format!("{group_page}/members"),
            &[("member", "@carol"), ("role", "member")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused
            .body
            .contains("managing members needs owner or admin"),
        "{}",
        alerts(&refused.body)
    );

    // The New artist form offers the group as Owner; the artist is made the group's.
    let form = alice
        .get(&format!("/art/artists/new?owner={group}"))
        .await
        .body;
    assert!(
        form.contains(">Owner<") && form.contains(">Just me<"),
        "{form}"
    );
    assert!(form.contains(&format!(
        "<option value=\"{group}\" selected>Kitchen Band crew"
    )));
    assert!(
        !carol.get("/art/artists/new").await.body.contains(">Owner<"),
        "no Owner for someone in no group"
    );
    let made = alice
        .post(
            "/art/artists/new",
            &[("name.full", "The Kitchen Band"), ("_owner", &group)],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", alerts(&made.body));
    let artist = made.location().to_owned();
    let artist_id = id_in(&artist);
    let read = alice.get(&artist).await.body;
    assert!(read.contains("Owned by the group"), "{read}");
    assert!(read.contains(&format!("<a href=\"{group_page}\">Kitchen Band crew</a>")));
    assert!(read.contains(">Edit<") && read.contains(">Delete<"));
    let page = alice.get(&group_page).await.body;
    assert!(
        page.contains("The Kitchen Band") && page.contains(&artist),
        "{page}"
    );
    // Someone not in the group cannot give an item to it.
    let outsider = carol
        .post(
            "/art/artists/new",
            &[("name.full", "Not Theirs"), ("_owner", &group)],
        )
        .await;
    assert_eq!(outsider.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        outsider.body.contains("not a member"),
        "{}",
        alerts(&outsider.body)
    );
    assert!(outsider.body.contains("value=\"Not Theirs\""));

    // Bob, a member, edits it (not the author): Edit, no Delete; the form has no $owner.
    let read = bob.get(&artist).await.body;
    assert!(read.contains(">Edit<"), "{read}");
    assert!(!read.contains(">Delete<"), "members do not delete");
    assert!(read.contains("you are member there"));
    let edit = bob.get(&format!("{artist}/edit")).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("value=\"The Kitchen Band\""));
    assert!(!edit.body.contains("$owner") && !edit.body.contains(">Owner<"));
    let saved = bob
        .post(
            &format!("{artist}/edit"),
            &[("name.full", "The Kitchen Band (live)")],
        )
        .await;
    assert_eq!(
        saved.status,
        StatusCode::SEE_OTHER,
        "{}",
        alerts(&saved.body)
    );
    let read = alice.get(&artist).await.body;
    assert!(read.contains("The Kitchen Band (live)"), "{read}");
    assert!(read.contains("Owned by the group"));
    // The new version, signed by bob, still names the group (G1 would refuse it otherwise).
    let record = bob.get(&format!("/api/v1/records/{artist_id}")).await.body;
    assert!(
        record.contains("$owner") && record.contains(&group),
        "{record}"
    );

    // Carol, in no group: no Edit or Delete, and refusals if she posts anyway.
    let read = carol.get(&artist).await.body;
    assert!(
        !read.contains(">Edit<") && !read.contains(">Delete<"),
        "{read}"
    );
    assert!(read.contains("its members may edit it"));
    let hijack = carol
        .post(&format!("{artist}/edit"), &[("name.full", "Hijacked")])
        .await;
    assert_eq!(
        hijack.status,
        StatusCode::FORBIDDEN,
        "{}",
        alerts(&hijack.body)
    );
    assert!(hijack.body.contains("Not allowed"));
    assert!(
        hijack.body.contains("carol is not a member"),
        "{}",
        alerts(&hijack.body)
    );
    assert_eq!(
        carol.post(&format!("{artist}/delete"), &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(
        alice
            .get(&artist)
            .await
            .body
            .contains("The Kitchen Band (live)")
    );

    // Promoted to admin, bob may delete; demoted back, he may not.
    let promoted = alice
        .post(
            &format!("{group_page}/role"),
            &[("member", &bob_did), ("role", "admin")],
        )
        .await;
    assert_eq!(
        promoted.status,
        StatusCode::SEE_OTHER,
        "{}",
        alerts(&promoted.body)
    );
    assert!(alice.get(&group_page).await.body.contains(">admin<"));
    assert!(bob.get(&artist).await.body.contains(">Delete<"));
    // An admin manages members but not owners: no forms on alice's row.
    let page = bob.get(&group_page).await.body;
    assert!(page.contains(">Add member<") && !page.contains("Remove @alice"));
    assert!(
        !page.contains("<option value=\"owner\""),
        "admins give no owner role"
    );

    // Removed, bob loses Edit; his version stays in force.
    let removed = alice
        .post(&format!("{group_page}/remove"), &[("member", &bob_did)])
        .await;
    assert_eq!(
        removed.status,
        StatusCode::SEE_OTHER,
        "{}",
        alerts(&removed.body)
    );
    let page = alice.get(&group_page).await.body;
    assert!(!page.contains("@bob"), "{page}");
    let read = bob.get(&artist).await.body;
    assert!(!read.contains(">Edit<"), "{read}");
    assert!(read.contains("The Kitchen Band (live)") && !read.contains("in force"));

    // Carol is added and leaves.
    let added = alice
        .post(
            &format!("{group_page}/members"),
            &[("member", "carol"), ("role", "moderator")],
        )
        .await;
    assert_eq!(
        added.status,
        StatusCode::SEE_OTHER,
        "{}",
        alerts(&added.body)
    );
    assert!(
        !carol.get(&artist).await.body.contains(">Edit<"),
        "moderators do not edit"
    );
    let left = carol.post(&format!("{group_page}/leave"), &[]).await;
    assert_eq!(left.status, StatusCode::SEE_OTHER, "{}", alerts(&left.body));
    let page = carol.get(&group_page).await.body;
    assert!(
        !page.contains("@carol") && !page.contains(">Leave group<"),
        "{page}"
    );
    // The last owner cannot leave: said next to the button.
    let last = alice.post(&format!("{group_page}/leave"), &[]).await;
    assert_ne!(last.status, StatusCode::SEE_OTHER, "{}", alerts(&last.body));
    assert!(last.body.contains("Not done:"), "{}", alerts(&last.body));
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_member_who_edited_may_leave() {
    let t = setup().await;
    let mut alice = Browser::new(&t.router);
    alice.sign_up("alice").await;
    let mut dave = Browser::new(&t.router);
    dave.sign_up("dave").await;
    let made = alice
        .post("/groups/new", &[("name", "Duo"), ("members", "@dave")])
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", alerts(&made.body));
    let group_page = made.location().to_owned();
    let group = id_in(&group_page);
    assert!(dave.get(&group_page).await.body.contains(">member<"));
    let made = alice
        .post(
            "/art/artists/new",
            &[("name.full", "Duo Band"), ("_owner", &group)],
        )
        .await;
    let artist = made.location().to_owned();
    let saved = dave
        .post(&format!("{artist}/edit"), &[("name.full", "Duo Band II")])
        .await;
    assert_eq!(
        saved.status,
        StatusCode::SEE_OTHER,
        "{}",
        alerts(&saved.body)
    );
    dave.get(&group_page).await;
    let left = dave.post(&format!("{group_page}/leave"), &[]).await;
    assert_eq!(left.status, StatusCode::SEE_OTHER, "{}", alerts(&left.body));
    assert!(dave.get(&artist).await.body.contains("Duo Band II"));
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_only_owner_is_told_why_there_is_no_leave_button() {
    let t = setup().await;
    let mut alice = Browser::new(&t.router);
    alice.sign_up("alice").await;
    let mut bob = Browser::new(&t.router);
    bob.sign_up("bob").await;
    let made = alice
        .post("/groups/new", &[("name", "Solo"), ("members", "@bob")])
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", alerts(&made.body));
    let group_page = made.location().to_owned();
    let leave = format!("action=\"{group_page}/leave\"");

    // Alice is the only owner: no Leave to press, and why.
    let page = alice.get(&group_page).await.body;
    assert!(!page.contains(&leave), "{page}");
    assert!(
        page.contains("You are the only owner: make someone else an owner before you leave."),
        "{page}"
    );
    // A member may leave.
    let page = bob.get(&group_page).await.body;
    assert!(page.contains(&leave), "{page}");
    assert!(!page.contains("You are the only owner"));

    // With a second owner, both may leave.
    let bob_did = did_of(&mut bob).await;
    let promoted = alice
        .post(
            &format!("{group_page}/role"),
            &[("member", &bob_did), ("role", "owner")],
        )
        .await;
    assert_eq!(
        promoted.status,
        StatusCode::SEE_OTHER,
        "{}",
        alerts(&promoted.body)
    );
    let page = alice.get(&group_page).await.body;
    assert!(page.contains(&leave), "{page}");
    assert!(!page.contains("You are the only owner"));
    t.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_groups_private_item_is_listed_for_its_readers_only() {
    let t = setup().await;
    let mut alice = Browser::new(&t.router);
    alice.sign_up("alice").await;
    let mut bob = Browser::new(&t.router);
    bob.sign_up("bob").await;
    let mut carol = Browser::new(&t.router);
    carol.sign_up("carol").await;
    let made = alice
        .post(
            "/groups/new",
            &[("name", "Band"), ("members", "@bob\n@carol")],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", alerts(&made.body));
    let group_page = made.location().to_owned();
    let group = id_in(&group_page);

    // A public post and one only bob may read, both the group's.
    let open = alice
        .post(
            "/social/posts/new",
            &[("text", "Gig on Friday"), ("_owner", &group)],
        )
        .await;
    assert_eq!(open.status, StatusCode::SEE_OTHER, "{}", alerts(&open.body));
    let open = id_in(open.location());
    let secret = alice
        .post(
            "/social/posts/new",
            &[
                ("text", "The setlist, between us"),
                ("_owner", &group),
                ("_readers", "people"),
                ("_to", "bob"),
            ],
        )
        .await;
    assert_eq!(
        secret.status,
        StatusCode::SEE_OTHER,
        "{}",
        alerts(&secret.body)
    );
    let secret = id_in(secret.location());

    // Its readers (alice, bob) find it on the group's page, and read its title.
    for b in [&mut alice, &mut bob] {
        let page = b.get(&group_page).await.body;
        assert!(page.contains(&open), "{page}");
        assert!(page.contains(&secret), "{page}");
        assert!(page.contains("The setlist, between us"), "{page}");
        assert!(
            page.contains("private: you are among its readers"),
            "{page}"
        );
    }
    // Carol, a member but not a reader, and a visitor see only the public post.
    let anon = Browser::new(&t.router).get(&group_page).await.body;
    for page in [carol.get(&group_page).await.body, anon] {
        assert!(page.contains(&open), "{page}");
        assert!(!page.contains(&secret), "{page}");
        assert!(!page.contains("The setlist"), "{page}");
        assert!(!page.contains("private:"), "{page}");
    }
    t.node.shutdown().await.unwrap();
}
