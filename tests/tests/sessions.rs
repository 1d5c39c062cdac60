//! Sessions on the deployed stack, from the side of the person they protect: a refresh token used twice ends its
//! session (its socket closes within seconds, a reconnect and every token of it are refused) while the user's
//! other devices go on; logout ends this device, logout everywhere every device; a password change ends every
//! other session. And in a crowd: twenty users logging out at once all lose their sockets; a `$connect` racing the
//! logout of its own session never leaves a live socket behind; one refresh token sent twice at the same moment
//! is a reuse, whichever request wins.

use std::time::Duration;

use chat_e2e::{Api, PASSWORD, SETUP_IN_FLIGHT, Stack, TestUser, WsClient};
use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

/// How long a session's socket may stay open after the session ended.
const CLOSED_WITHIN: Duration = Duration::from_secs(10);

async fn refresh(api: &Api, refresh_token: &str) -> (u16, Value) {
    api.call("POST", "/auth/refresh", None, Some(json!({ "refreshToken": refresh_token }))).await
}

async fn me(api: &Api, user: &TestUser) -> u16 {
    api.call("GET", "/users/me", Some(&user.token), None).await.0
}

/// The socket still serves its user: a ping is answered.
async fn still_open(ws: &mut WsClient) {
    let pong = ws.call(json!({ "action": "ping" })).await;
    assert_eq!(pong["event"], "pong", "{pong}");
}

#[tokio::test]
async fn a_refresh_token_used_twice_ends_its_session_and_closes_its_socket_only() {
    let stack = Stack::load();
    let api = stack.api();
    let phone = api.register("alice").await;
    let laptop = api.login(&phone).await;
    let mut phone_ws = WsClient::connect(&stack, &phone).await;
    let mut laptop_ws = WsClient::connect(&stack, &laptop).await;

    let (status, rotated) = refresh(&api, &phone.refresh_token).await;
    assert_eq!(status, 200, "{rotated}");
    let renewed = TestUser {
        token: rotated["token"].as_str().unwrap().to_owned(),
        refresh_token: rotated["refreshToken"].as_str().unwrap().to_owned(),
        ..phone.clone()
    };
    assert_eq!(me(&api, &renewed).await, 200);
    still_open(&mut phone_ws).await;

    // The old refresh token comes back (a copy): the session ends, for the copy and the owner alike.
    let (status, refused) = refresh(&api, &phone.refresh_token).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (401, Some("unauthorized")), "{refused}");
    assert!(phone_ws.ends_within(CLOSED_WITHIN).await, "the session's socket closes");
    assert_eq!((me(&api, &phone).await, me(&api, &renewed).await), (401, 401));
    assert_eq!(refresh(&api, &renewed.refresh_token).await.0, 401);
    assert!(WsClient::try_connect(&stack, &renewed.token).await.is_err(), "a reconnect is refused");
    // The other device never noticed.
    assert_eq!(me(&api, &laptop).await, 200);
    still_open(&mut laptop_ws).await;
    laptop_ws.close().await;
}

#[tokio::test]
async fn logout_ends_this_device_everywhere_ends_all_and_a_new_password_ends_the_others() {
    let stack = Stack::load();
    let api = stack.api();
    let first = api.register("bob").await;
    let devices: Vec<TestUser> = join_all((0..3).map(|_| api.login(&first))).await;
    let mut sockets = Vec::new();
    for device in &devices {
        sockets.push(WsClient::connect(&stack, device).await);
    }

    let (status, ended) = api.call("POST", "/auth/logout", Some(&devices[0].token), None).await;
    assert_eq!((status, ended), (200, json!({"endedSessions": 1, "closedConnections": 1})));
    assert!(sockets[0].ends_within(CLOSED_WITHIN).await);
    still_open(&mut sockets[1]).await;
    assert_eq!(me(&api, &devices[0]).await, 401);

    // A password change from device 1 ends devices 2 and 3 (and the first session), not device 1.
    let change = json!({"currentPassword": PASSWORD, "newPassword": "another-horse-2"});
    let (status, ended) = api.call("PUT", "/users/me/password", Some(&devices[1].token), Some(change)).await;
    assert_eq!((status, &ended["endedSessions"]), (200, &json!(2)), "{ended}");
    assert!(sockets[2].ends_within(CLOSED_WITHIN).await);
    still_open(&mut sockets[1]).await;
    assert_eq!((me(&api, &first).await, me(&api, &devices[2]).await, me(&api, &devices[1]).await), (401, 401, 200));
    let old = json!({"username": first.username, "password": PASSWORD});
    assert_eq!(api.call("POST", "/auth/login", None, Some(old)).await.0, 401, "the old password is refused");

    let (_, listed) = api.call("GET", "/users/me/sessions", Some(&devices[1].token), None).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{listed}");
    let (status, _) = api.call("POST", "/auth/logout-all", Some(&devices[1].token), None).await;
    assert_eq!(status, 200);
    assert!(sockets[1].ends_within(CLOSED_WITHIN).await);
    assert_eq!(me(&api, &devices[1]).await, 401);
}

#[tokio::test]
async fn twenty_users_logging_out_at_once_all_lose_their_sockets_and_nothing_else_does() {
    const USERS: usize = 20;
    let stack = Stack::load();
    let api = stack.api();
    let users = api.register_many("crowd", USERS).await;
    let second: Vec<TestUser> = stream::iter(&users).map(|u| api.login(u)).buffered(SETUP_IN_FLIGHT).collect().await;
    let mut leaving = Vec::new();
    let mut staying = Vec::new();
    for (user, other) in users.iter().zip(&second) {
        leaving.push(WsClient::connect(&stack, user).await);
        staying.push(WsClient::connect(&stack, other).await);
    }
    let answers = join_all(users.iter().map(|u| api.call("POST", "/auth/logout", Some(&u.token), None))).await;
    for (status, body) in &answers {
        assert_eq!((*status, &body["endedSessions"]), (200, &json!(1)), "{body}");
    }
    let closed = join_all(leaving.iter_mut().map(|ws| ws.ends_within(CLOSED_WITHIN))).await;
    assert!(closed.iter().all(|c| *c), "every logged-out socket closes: {closed:?}");
    for ws in &mut staying {
        still_open(ws).await;
    }
    let statuses = join_all(users.iter().chain(&second).map(|u| me(&api, u))).await;
    assert_eq!(statuses, [vec![401; USERS], vec![200; USERS]].concat());
    stack.close_in_waves(&second, staying).await;
}

#[tokio::test]
async fn a_connect_racing_the_logout_of_its_session_never_stays_open() {
    const RACES: usize = 12;
    let stack = Stack::load();
    let api = stack.api();
    let users = api.register_many("racer", RACES).await;
    // The logout starts 0, 6, 12… ms after the connect, so races land before, during and after `$connect`.
    let (api, stack) = (&api, &stack);
    let races = users.iter().enumerate().map(|(n, user)| async move {
        let logout = async {
            tokio::time::sleep(Duration::from_millis(6 * n as u64)).await;
            api.call("POST", "/auth/logout", Some(&user.token), None).await
        };
        let (socket, (status, _)) = tokio::join!(WsClient::try_connect(stack, &user.token), logout);
        assert_eq!(status, 200);
        match socket {
            Err(_) => "refused",
            Ok(mut ws) => {
                assert!(ws.ends_within(CLOSED_WITHIN).await, "a socket of an ended session stayed open");
                "closed"
            }
        }
    });
    let outcomes = join_all(races).await;
    println!("{RACES} connects racing their logout: {outcomes:?}");
    assert_eq!(stack.connections_of(&users, 0, CLOSED_WITHIN).await, 0, "no connection of an ended session is left");
}

#[tokio::test]
async fn one_refresh_token_sent_twice_at_once_is_a_reuse_whichever_wins() {
    let stack = Stack::load();
    let api = stack.api();
    let users: Vec<TestUser> = stream::iter(0..8).map(|_| api.register("twice")).buffered(8).collect().await;
    for user in &users {
        let (a, b) = tokio::join!(refresh(&api, &user.refresh_token), refresh(&api, &user.refresh_token));
        let won: Vec<&Value> = [&a, &b].into_iter().filter(|(s, _)| *s == 200).map(|(_, body)| body).collect();
        assert!([a.0, b.0].iter().all(|s| *s == 200 || *s == 401), "{a:?} {b:?}");
        assert!(won.len() <= 1, "both rotations of one generation succeeded: {a:?} {b:?}");
        // The loser was a reuse: the session ended, so even the winner's new tokens are refused.
        let ended_for_all = match won.first() {
            Some(body) => refresh(&api, body["refreshToken"].as_str().unwrap()).await.0 == 401,
            None => true,
        };
        assert!(ended_for_all);
        assert_eq!(me(&api, user).await, 401);
    }
}
