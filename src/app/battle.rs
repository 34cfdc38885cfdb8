//! The battle page: its head (the battle, the link, notifications, the
//! connection), the player's desk or a spectator's view of both players,
//! and the live region that announces changes. Names are text, never
//! markup.

use leptos::{html, prelude::*};

use super::{player_desk::PlayerDesk, Address};
use crate::{
    client::{copy_to_clipboard, BattleClient, ConnectionState, Notifications, Views},
    protocol::{PlayerName, Role, RoomName},
    status::Badge,
};

/// The client of this page, once it runs (in the browser).
pub(super) type Client = StoredValue<Option<BattleClient>, LocalStorage>;

/// `/battle/<id>[?role=spectator]`: a battle, or a plain message if the id
/// is not valid.
#[component]
pub fn BattlePage(id: String, address: Address) -> impl IntoView {
    let role = address
        .query("role")
        .and_then(|role| Role::parse(&role))
        .unwrap_or_default();
    // A join token from the host application, passed on to the socket.
    let token = address.query("token").filter(|token| {
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    // The player's name from the battle link, if it has a valid one.
    let name = address
        .query("name")
        .and_then(|name| PlayerName::parse(&name).ok());
    match RoomName::parse(&id) {
        Ok(room) => view! { <Battle room role token name/> }.into_any(),
        Err(reason) => view! {
            <section class="card narrow">
                <h1>"No such battle"</h1>
                <p class="error">{reason.to_string()}</p>
                <p><a href="/">"Back to the lobby"</a></p>
            </section>
        }
        .into_any(),
    }
}

#[component]
fn Battle(
    room: RoomName,
    role: Role,
    token: Option<String>,
    name: Option<PlayerName>,
) -> impl IntoView {
    let views = Views::new();
    let client: Client = StoredValue::new_local(None);
    let name_field = NodeRef::<html::Input>::new();
    let started_room = room.clone();
    Effect::new(move |_| {
        // A name typed before the page hydrated wins over the link's: the
        // player chose it last, and its change event reached no one.
        let typed = name_field
            .get_untracked()
            .and_then(|field| PlayerName::parse(&field.value()).ok());
        client.set_value(BattleClient::start(
            started_room.clone(),
            role,
            token.clone(),
            typed.or_else(|| name.clone()),
            views,
        ));
    });
    on_cleanup(move || client.with_value(|client| client.iter().for_each(BattleClient::stop)));

    let connection = views.connection;
    let battle_link = format!("/battle/{room}");
    let watch_link = format!("/battle/{room}?role=spectator");
    let body = match role {
        Role::Player => view! { <PlayerDesk client views name_field/> }.into_any(),
        Role::Spectator => view! { <SpectatorDesk views/> }.into_any(),
    };
    let announcement = views.announcement;

    view! {
        <section class="battle">
            <input type="hidden" id="battleId" value=room.to_string()/>
            <div class="battle-head">
                <div>
                    <p class="eyebrow">
                        {match role {
                            Role::Player => "Battle",
                            Role::Spectator => "Watching battle",
                        }}
                    </p>
                    <h1 class="battle-id">{room.to_string()}</h1>
                </div>
                <div class="head-actions">
                    <NotifyButton client views/>
                    <CopyLink link=battle_link.clone()/>
                    {(role == Role::Player)
                        .then(|| {
                            view! {
                                <a id="watchLink" class="button ghost" href=watch_link.clone()>
                                    "Watch"
                                </a>
                            }
                        })}
                    <span
                        id="connectionState"
                        class="pill"
                        data-state=move || connection.get().name()
                        aria-live="polite"
                    >
                        {move || connection.get().label()}
                    </span>
                </div>
            </div>
            <p id="announcer" class="visually-hidden" role="status" aria-live="polite">
                {move || announcement.get()}
            </p>
            {move || {
                connection
                    .get()
                    .explanation()
                    .map(|explanation| {
                        view! {
                            <div id="turnedAway" class="card notice" role="alert">
                                <p>{explanation}</p>
                                {(connection.get() == ConnectionState::RoomFull)
                                    .then(|| {
                                        view! {
                                            <a class="button primary" href=watch_link.clone()>
                                                "Watch instead"
                                            </a>
                                        }
                                    })}
                            </div>
                        }
                    })
            }}
            {body}
        </section>
    }
}

/// A button that copies the battle's link, with feedback.
#[component]
fn CopyLink(link: String) -> impl IntoView {
    let copied = RwSignal::new(None::<bool>);
    let copy = move |_| {
        let origin = window().location().origin().unwrap_or_default();
        copy_to_clipboard(format!("{origin}{link}"), move |ok| copied.set(Some(ok)));
    };
    view! {
        <button id="copyLink" class="button ghost" on:click=copy>
            {move || match copied.get() {
                None => "Copy link",
                Some(true) => "Copied!",
                Some(false) => "Copy failed: use the address bar",
            }}
        </button>
    }
}

/// Offers browser notifications of verdicts, asked for only on a click.
#[component]
fn NotifyButton(client: Client, views: Views) -> impl IntoView {
    let state = views.notifications;
    let enable =
        move |_| client.with_value(|c| c.iter().for_each(BattleClient::enable_notifications));
    // Rendered from the start and only hidden until the page knows whether
    // the browser can notify, so that nothing moves when it does.
    view! {
        <button
            id="notifyButton"
            class="button ghost"
            class:unavailable=move || state.get() == Notifications::Unavailable
            on:click=enable
            disabled=move || state.get() != Notifications::Off
        >
            {move || match state.get() {
                Notifications::On => "Verdicts notify you",
                Notifications::Blocked => "Notifications blocked",
                _ => "Notify me of verdicts",
            }}
        </button>
    }
}

/// "Away for 40 s" beside a status, while the player's tab is hidden.
#[component]
pub(super) fn AwayPill(id: &'static str, badge: Signal<Badge>) -> impl IntoView {
    view! {
        <span id=id class="away-pill" hidden=move || badge.get().away.is_none()>
            {move || badge.get().away.map(|away| format!("· {away}"))}
        </span>
    }
}

/// A spectator's side: both players' names and statuses.
#[component]
fn SpectatorDesk(views: Views) -> impl IntoView {
    let players = views.players;
    let badges = views.player_badges;
    let panel = move |at: usize| {
        let number = at + 1;
        let badge = Signal::derive(move || badges.get()[at].clone());
        let away_id = ["player1Away", "player2Away"][at];
        view! {
            <section class="card player-card" aria-labelledby=format!("player{number}Name")>
                <p class="card-title player-name" id=format!("player{number}Name")>
                    {move || badge.get().name.unwrap_or_else(|| format!("Player {number}"))}
                </p>
                <div class="status-line">
                    <div
                        id=format!("player{number}Status")
                        class="status"
                        data-status=move || players.get()[at].name()
                    >
                        {move || players.get()[at].watcher_label()}
                    </div>
                    <AwayPill id=away_id badge/>
                </div>
            </section>
        }
    };
    let timeline = views.timeline;
    view! {
        <div class="spectator-grid">{panel(0)} {panel(1)}</div>
        <section class="card timeline-card" aria-labelledby="timelineTitle">
            <h2 class="card-title" id="timelineTitle">"Timeline"</h2>
            <ol id="timeline" class="timeline">
                <For each=move || numbered(timeline.get()) key=|line| line.clone() let:line>
                    <li>{line.1}</li>
                </For>
            </ol>
            <HistoryGap views/>
        </section>
    }
}

/// Lines with their place, so that two equal lines are two items.
pub(super) fn numbered(lines: Vec<String>) -> Vec<(usize, String)> {
    lines.into_iter().enumerate().collect()
}

/// Said when a reconnection could not recover every earlier move.
#[component]
pub(super) fn HistoryGap(views: Views) -> impl IntoView {
    let gap = views.history_gap;
    view! {
        <Show when=move || gap.get()>
            <p id="historyGap" class="notice-line" role="status">
                "Some earlier moves were not recovered."
            </p>
        </Show>
    }
}
