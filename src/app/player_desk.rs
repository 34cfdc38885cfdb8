//! A player's side of the battle page: their name, the editor (Tab
//! indents, Esc then Tab leaves, Ctrl+Enter runs, Ctrl+Shift+Enter
//! submits), Run and Submit, and the opponent's name and status.

use leptos::{ev, html, prelude::*};
use web_sys::HtmlTextAreaElement;

use super::battle::{numbered, AwayPill, Client, HistoryGap};
use crate::{
    client::{BattleClient, Views},
    protocol::Action,
    status::action_label,
};

/// Spaces inserted by the Tab key in the editor.
const INDENT: &str = "    ";

/// What a key pressed in the editor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EditorKey {
    /// Tab indents (unless Esc came just before).
    Indent,
    /// Ctrl+Enter (Cmd+Enter on macOS) runs.
    Run,
    /// Ctrl+Shift+Enter submits.
    Submit,
    /// Anything else does what it always does.
    Default,
}

/// The editor's keys: Tab indents, but Esc then Tab (and Shift+Tab) leave
/// the editor, as in CodeMirror and GitHub's editors.
fn editor_key(key: &str, shift: bool, command: bool, alt: bool, escaped: bool) -> EditorKey {
    match key {
        "Enter" if command && shift => EditorKey::Submit,
        "Enter" if command => EditorKey::Run,
        "Tab" if !shift && !command && !alt && !escaped => EditorKey::Indent,
        _ => EditorKey::Default,
    }
}

/// A player's side: the editor, Run and Submit, their name, and the
/// opponent.
#[component]
pub(super) fn PlayerDesk(
    client: Client,
    views: Views,
    name_field: NodeRef<html::Input>,
) -> impl IntoView {
    let with_client = move |f: &dyn Fn(&BattleClient)| client.with_value(|c| c.iter().for_each(f));
    let escaped = StoredValue::new(false);
    let on_keydown = move |event: ev::KeyboardEvent| {
        let key = event.key();
        let command = event.ctrl_key() || event.meta_key();
        let pressed = editor_key(
            &key,
            event.shift_key(),
            command,
            event.alt_key(),
            escaped.get_value(),
        );
        escaped.set_value(key == "Escape");
        match pressed {
            EditorKey::Indent => {
                event.prevent_default();
                indent(&event_target::<HtmlTextAreaElement>(&event));
                with_client(&BattleClient::typed);
            }
            EditorKey::Run => {
                event.prevent_default();
                with_client(&|c| c.act(Action::Running));
            }
            EditorKey::Submit => {
                event.prevent_default();
                with_client(&|c| c.act(Action::Submitted));
            }
            EditorKey::Default => {}
        }
    };
    let opponent = views.opponent;
    let badge = views.opponent_badge;
    let own_action = views.own_action;
    let moves = views.opponent_moves;
    view! {
        <div class="battle-grid">
            <div class="card editor-card">
                <NameField client views field=name_field/>
                <label for="editor" class="card-title">"Your solution"</label>
                <textarea
                    id="editor"
                    class="editor"
                    spellcheck="false"
                    autocapitalize="off"
                    autocomplete="off"
                    placeholder="// write your solution here"
                    aria-describedby="editorHint"
                    on:input=move |_| with_client(&BattleClient::typed)
                    on:keydown=on_keydown
                ></textarea>
                <p id="editorHint" class="editor-hint">
                    "Tab indents · Esc then Tab leaves the editor · "
                    <kbd>"Ctrl+Enter"</kbd>" runs · "<kbd>"Ctrl+Shift+Enter"</kbd>" submits"
                </p>
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
                        aria-keyshortcuts="Control+Enter Meta+Enter"
                        on:click=move |_| with_client(&|c| c.act(Action::Running))
                    >
                        "Run" <kbd class="shortcut">"Ctrl+Enter"</kbd>
                    </button>
                    <button
                        id="submitButton"
                        class="button primary"
                        aria-keyshortcuts="Control+Shift+Enter Meta+Shift+Enter"
                        on:click=move |_| with_client(&|c| c.act(Action::Submitted))
                    >
                        "Submit" <kbd class="shortcut">"Ctrl+Shift+Enter"</kbd>
                    </button>
                </div>
            </div>
            <aside class="card opponent-card" aria-labelledby="opponentName">
                <p class="card-title player-name" id="opponentName">
                    {move || badge.get().name.unwrap_or_else(|| "Opponent".into())}
                </p>
                <div class="status-line">
                    <div id="opponentStatus" class="status" data-status=move || opponent.get().name()>
                        {move || opponent.get().label()}
                    </div>
                    <AwayPill id="opponentAway" badge=Signal::derive(move || badge.get())/>
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

/// The player's name: remembered, editable any time, sent to the room when
/// changed; fixed when the battle link's token names the player.
///
/// The field is written only once there is a name, never from the empty
/// state hydration starts with: what the player typed before the page
/// hydrated stays, and the client starts with it.
#[component]
fn NameField(client: Client, views: Views, field: NodeRef<html::Input>) -> impl IntoView {
    let (name, error, locked) = (views.name, views.name_error, views.name_locked);
    Effect::new(move |_| {
        let name = name.get();
        if let Some(field) = field.get().filter(|_| !name.is_empty()) {
            field.set_value(&name);
        }
    });
    let rename = move |event: ev::Event| {
        let typed = event_target_value(&event);
        client.with_value(|c| c.iter().for_each(|c| c.rename(&typed)));
    };
    view! {
        <div class="name-field">
            <label for="nameInput">"Your name"</label>
            <input
                id="nameInput"
                autocomplete="nickname"
                placeholder="Shown to your opponent"
                aria-describedby="nameError"
                node_ref=field
                disabled=move || locked.get()
                on:change=rename
            />
            <p id="nameError" class="error" role="alert">
                {move || match (locked.get(), error.get()) {
                    (true, _) => Some("Your name comes from your battle link.".to_owned()),
                    (false, error) => error,
                }}
            </p>
        </div>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_indents_until_esc_and_shift_tab_always_leaves() {
        assert_eq!(
            editor_key("Tab", false, false, false, false),
            EditorKey::Indent
        );
        assert_eq!(
            editor_key("Tab", false, false, false, true),
            EditorKey::Default
        );
        assert_eq!(
            editor_key("Tab", true, false, false, false),
            EditorKey::Default
        );
        assert_eq!(
            editor_key("Tab", false, true, false, false),
            EditorKey::Default
        );
    }

    #[test]
    fn ctrl_or_cmd_enter_runs_and_with_shift_submits() {
        assert_eq!(
            editor_key("Enter", false, true, false, false),
            EditorKey::Run
        );
        assert_eq!(
            editor_key("Enter", true, true, false, true),
            EditorKey::Submit
        );
        assert_eq!(
            editor_key("Enter", false, false, false, false),
            EditorKey::Default
        );
        assert_eq!(
            editor_key("Enter", true, false, false, false),
            EditorKey::Default
        );
    }
}
