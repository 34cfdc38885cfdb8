//! The battle page: a player's editor, Run and Submit, their connection and
//! the opponent's status; or a spectator's view of both players.

use leptos::{ev, prelude::*};
use leptos_router::hooks::{use_params_map, use_query_map};
use web_sys::HtmlTextAreaElement;

use crate::{
    client::{copy_to_clipboard, BattleClient, ConnectionState, Views},
    protocol::{Action, Role, RoomName},
    status::{action_label, Status},
};

/// Spaces inserted by the Tab key in the editor.
const INDENT: &str = "    ";

/// `/battle/<id>[?role=spectator]`: a battle, or a plain message if the id
/// is not valid.
#[component]
pub fn BattlePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    move || {
        let id = params.read().get("id").unwrap_or_default();
        let role = query
            .read()
            .get("role")
            .and_then(|role| Role::parse(&role))
            .unwrap_or_default();
        // A join token from the host application, passed on to the socket.
        let token = query.read().get("token").filter(|token| {
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
        match RoomName::parse(&id) {
            Ok(room) => view! { <Battle room role token/> }.into_any(),
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
}

#[component]
fn Battle(room: RoomName, role: Role, token: Option<String>) -> impl IntoView {
    let views = Views {
        connection: RwSignal::new(ConnectionState::Connecting),
        opponent: RwSignal::new(Status::Waiting),
        players: RwSignal::new([Status::Waiting; 2]),
        own_action: RwSignal::new(None),
        timeline: RwSignal::new(Vec::new()),
        opponent_moves: RwSignal::new(Vec::new()),
        history_gap: RwSignal::new(false),
    };
    let client = StoredValue::new_local(None::<BattleClient>);
    let started_room = room.clone();
    Effect::new(move |_| {
        client.set_value(BattleClient::start(
            started_room.clone(),
            role,
            token.clone(),
            views,
        ));
    });
    on_cleanup(move || client.with_value(|client| client.iter().for_each(BattleClient::stop)));

    let connection = views.connection;
    let battle_link = format!("/battle/{room}");
    let watch_link = format!("/battle/{room}?role=spectator");
    let body = match role {
        Role::Player => view! { <PlayerDesk client views/> }.into_any(),
        Role::Spectator => view! { <SpectatorDesk views/> }.into_any(),
    };

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
                    <CopyLink link=battle_link.clone()/>
                    {(role == Role::Player)
                        .then(|| {
                            view! {
                                <a id="watchLink" class="button ghost" href=watch_link.clone() rel="external">
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
                                            <a class="button primary" href=watch_link.clone() rel="external">
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

/// A player's side: the editor, Run and Submit, and the opponent.
#[component]
fn PlayerDesk(
    client: StoredValue<Option<BattleClient>, LocalStorage>,
    views: Views,
) -> impl IntoView {
    let with_client = move |f: &dyn Fn(&BattleClient)| client.with_value(|c| c.iter().for_each(f));
    let on_keydown = move |event: ev::KeyboardEvent| {
        if event.key() == "Tab" && !event.shift_key() && !event.ctrl_key() && !event.alt_key() {
            event.prevent_default();
            indent(&event_target::<HtmlTextAreaElement>(&event));
            with_client(&BattleClient::typed);
        }
    };
    let opponent = views.opponent;
    let own_action = views.own_action;
    let moves = views.opponent_moves;
    view! {
        <div class="battle-grid">
            <div class="card editor-card">
                <label for="editor" class="card-title">"Your solution"</label>
                <textarea
                    id="editor"
                    class="editor"
                    spellcheck="false"
                    autocapitalize="off"
                    autocomplete="off"
                    placeholder="// write your solution here"
                    on:input=move |_| with_client(&BattleClient::typed)
                    on:keydown=on_keydown
                ></textarea>
                <div class="editor-actions">
                    <p id="ownStatus" class="own-status" aria-live="polite">
                        {move || {
                            own_action
                                .get()
                                .map(|action| format!("Last sent: {}", action_label(action)))
                        }}
                    </p>
                    <button
                        id="runButton"
                        class="button"
                        on:click=move |_| with_client(&|c| c.act(Action::Running))
                    >
                        "Run"
                    </button>
                    <button
                        id="submitButton"
                        class="button primary"
                        on:click=move |_| with_client(&|c| c.act(Action::Submitted))
                    >
                        "Submit"
                    </button>
                </div>
            </div>
            <aside class="card opponent-card" aria-label="Opponent">
                <p class="card-title">"Opponent"</p>
                <div
                    id="opponentStatus"
                    class="status"
                    data-status=move || opponent.get().name()
                    aria-live="polite"
                >
                    {move || opponent.get().label()}
                </div>
                <p class="card-title moves-title" id="opponentMovesTitle">"Opponent's last moves"</p>
                <ol id="opponentMoves" class="moves" aria-labelledby="opponentMovesTitle">
                    <For each=move || numbered(moves.get()) key=|line| line.clone() let:line>
                        <li>{line.1}</li>
                    </For>
                </ol>
                <HistoryGap views/>
            </aside>
        </div>
    }
}

/// A spectator's side: both players' statuses.
#[component]
fn SpectatorDesk(views: Views) -> impl IntoView {
    let players = views.players;
    let panel = move |at: usize| {
        let id = format!("player{}Status", at + 1);
        view! {
            <div class="card player-card">
                <p class="card-title">{format!("Player {}", at + 1)}</p>
                <div
                    id=id
                    class="status"
                    data-status=move || players.get()[at].name()
                    aria-live="polite"
                >
                    {move || players.get()[at].watcher_label()}
                </div>
            </div>
        }
    };
    let timeline = views.timeline;
    view! {
        <div class="spectator-grid">{panel(0)} {panel(1)}</div>
        <section class="card timeline-card" aria-labelledby="timelineTitle">
            <h2 class="card-title" id="timelineTitle">"Timeline"</h2>
            <ol id="timeline" class="timeline" role="log" aria-live="polite">
                <For each=move || numbered(timeline.get()) key=|line| line.clone() let:line>
                    <li>{line.1}</li>
                </For>
            </ol>
            <HistoryGap views/>
        </section>
    }
}

/// Lines with their place, so that two equal lines are two items.
fn numbered(lines: Vec<String>) -> Vec<(usize, String)> {
    lines.into_iter().enumerate().collect()
}

/// Said when a reconnection could not recover every earlier move.
#[component]
fn HistoryGap(views: Views) -> impl IntoView {
    let gap = views.history_gap;
    view! {
        <Show when=move || gap.get()>
            <p id="historyGap" class="notice-line" role="status">
                "Some earlier moves were not recovered."
            </p>
        </Show>
    }
}

/// Replaces the editor's selection with [`INDENT`], as a code editor does.
fn indent(editor: &HtmlTextAreaElement) {
    let value = editor.value();
    let to_byte = |utf16: Option<u32>| {
        let utf16 = utf16.unwrap_or(0) as usize;
        let mut units = 0;
        value
            .char_indices()
            .find(|(_, c)| {
                let here = units >= utf16;
                units += c.len_utf16();
                here
            })
            .map_or(value.len(), |(at, _)| at)
    };
    let start = to_byte(editor.selection_start().ok().flatten());
    let end = to_byte(editor.selection_end().ok().flatten()).max(start);
    editor.set_value(&format!("{}{INDENT}{}", &value[..start], &value[end..]));
    let caret = (value[..start].encode_utf16().count() + INDENT.len()) as u32;
    let _ = editor.set_selection_range(caret, caret);
}
