//! Declarative slash commands: what a module declares, how it becomes Discord's command JSON, and
//! how an invocation's options are read back.

use twilight_model::application::command::{
    Command, CommandOption, CommandOptionChoice, CommandOptionChoiceValue, CommandOptionType,
    CommandOptionValue as MinMax, CommandType,
};
use twilight_model::application::interaction::InteractionContextType;
use twilight_model::application::interaction::InteractionDataResolved;
use twilight_model::application::interaction::application_command::{CommandDataOption, CommandOptionValue};
use twilight_model::channel::Attachment;
use twilight_model::channel::ChannelType;
use twilight_model::guild::Permissions;
use twilight_model::id::Id;
use twilight_model::id::marker::CommandVersionMarker;
use twilight_model::oauth::ApplicationIntegrationType;

use crate::access::Access;

/// A slash command a module owns.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// The command's name (`/name`), unique across modules.
    pub name: &'static str,
    /// The line Discord shows under the name.
    pub description: &'static str,
    /// Options or subcommands, in order.
    pub options: Vec<OptionSpec>,
    /// Who Beacon lets run it (checked on every invocation, whatever Discord's UI shows).
    pub access: Access,
    /// What Discord's UI requires by default (admins can change it in the server settings).
    pub default_member_permissions: Option<Permissions>,
    /// Whether the command answers in public (everyone in the channel sees it); otherwise only
    /// the caller does. A slow answer is deferred the same way, so it stays what it would be.
    pub public: bool,
    /// A slash command, or an entry of a member's context menu (Apps → name).
    pub user_menu: bool,
    /// Where Discord offers the command (its `contexts`): in servers only by default; a command
    /// that also works in the member's DM with Beacon adds [`InteractionContextType::BotDm`]
    /// ([`CommandSpec::in_dms`]), is registered globally (guild commands never show in DMs) and
    /// is answered there by [`crate::Module::dm_command`].
    pub contexts: Vec<InteractionContextType>,
}

impl CommandSpec {
    /// A command with no options that `access` and above may run.
    pub fn new(name: &'static str, description: &'static str, access: Access) -> CommandSpec {
        CommandSpec {
            name,
            description,
            options: Vec::new(),
            access,
            default_member_permissions: None,
            public: false,
            user_menu: false,
            contexts: vec![InteractionContextType::Guild],
        }
    }

    /// An entry of the user context menu (right click on a member → Apps → `name`); the
    /// handler gets the member in [`crate::CommandCtx::target_id`]. Names may hold capitals and
    /// spaces, and the entry has no description or options.
    pub fn user_menu(name: &'static str, access: Access) -> CommandSpec {
        CommandSpec { user_menu: true, ..CommandSpec::new(name, "", access) }
    }

    /// Whether the name follows Discord's rule for the kind of command.
    pub fn valid_name(&self) -> bool {
        if self.user_menu { (1..=32).contains(&self.name.chars().count()) } else { valid_name(self.name) }
    }

    /// The command answers in public (a deferred answer is public too).
    pub fn public(mut self) -> CommandSpec {
        self.public = true;
        self
    }

    /// The command also works in the member's DM with Beacon (its module answers it in
    /// [`crate::Module::dm_command`], where there is no server).
    pub fn in_dms(mut self) -> CommandSpec {
        if !self.contexts.contains(&InteractionContextType::BotDm) {
            self.contexts.push(InteractionContextType::BotDm);
        }
        self
    }

    /// Whether Discord offers the command in the member's DM with Beacon.
    pub fn works_in_dms(&self) -> bool {
        self.contexts.contains(&InteractionContextType::BotDm)
    }

    /// Adds an option (or subcommand).
    pub fn option(mut self, option: OptionSpec) -> CommandSpec {
        self.options.push(option);
        self
    }

    /// Sets what Discord's UI requires by default.
    pub fn default_permissions(mut self, permissions: Permissions) -> CommandSpec {
        self.default_member_permissions = Some(permissions);
        self
    }

    /// The JSON Discord receives in a bulk overwrite.
    pub fn to_command(&self) -> Command {
        Command {
            application_id: None,
            contexts: Some(self.contexts.clone()),
            default_member_permissions: self.default_member_permissions,
            description: self.description.to_owned(),
            description_localizations: None,
            #[allow(deprecated)]
            dm_permission: None,
            guild_id: None,
            id: None,
            // Beacon is installed to servers; it is not a user-installed app.
            integration_types: Some(vec![ApplicationIntegrationType::GuildInstall]),
            kind: if self.user_menu { CommandType::User } else { CommandType::ChatInput },
            name: self.name.to_owned(),
            name_localizations: None,
            nsfw: None,
            options: self.options.iter().map(OptionSpec::to_option).collect(),
            version: Id::<CommandVersionMarker>::new(1),
        }
    }
}

/// The type of an option, with its constraints.
#[derive(Debug, Clone)]
pub enum OptionKind {
    /// A subcommand with its options.
    SubCommand(Vec<OptionSpec>),
    /// A group of subcommands.
    SubCommandGroup(Vec<OptionSpec>),
    /// Text.
    String {
        /// Shortest accepted text.
        min_length: Option<u16>,
        /// Longest accepted text.
        max_length: Option<u16>,
        /// Fixed `(name, value)` choices; free text when empty.
        choices: Vec<(&'static str, &'static str)>,
    },
    /// A whole number.
    Integer {
        /// Smallest accepted value.
        min: Option<i64>,
        /// Largest accepted value.
        max: Option<i64>,
    },
    /// True or false.
    Boolean,
    /// A member or user.
    User,
    /// A channel of one of these types (any type when empty).
    Channel(Vec<ChannelType>),
    /// A role.
    Role,
    /// An uploaded file.
    Attachment,
}

/// One option of a command or subcommand.
#[derive(Debug, Clone)]
pub struct OptionSpec {
    /// The option's name.
    pub name: &'static str,
    /// The line Discord shows for it.
    pub description: &'static str,
    /// Its type and constraints.
    pub kind: OptionKind,
    /// Whether Discord requires it.
    pub required: bool,
    /// Whether the module suggests values while the member types.
    pub autocomplete: bool,
}

impl OptionSpec {
    /// A subcommand with `options`.
    pub fn subcommand(name: &'static str, description: &'static str, options: Vec<OptionSpec>) -> OptionSpec {
        OptionSpec::of(name, description, OptionKind::SubCommand(options))
    }

    /// An optional text option.
    pub fn string(name: &'static str, description: &'static str) -> OptionSpec {
        OptionSpec::of(
            name,
            description,
            OptionKind::String { min_length: None, max_length: None, choices: Vec::new() },
        )
    }

    /// An optional integer option within `min..=max`.
    pub fn integer(name: &'static str, description: &'static str, min: Option<i64>, max: Option<i64>) -> OptionSpec {
        OptionSpec::of(name, description, OptionKind::Integer { min, max })
    }

    /// An optional true/false option.
    pub fn boolean(name: &'static str, description: &'static str) -> OptionSpec {
        OptionSpec::of(name, description, OptionKind::Boolean)
    }

    /// An optional user option.
    pub fn user(name: &'static str, description: &'static str) -> OptionSpec {
        OptionSpec::of(name, description, OptionKind::User)
    }

    /// An optional role option.
    pub fn role(name: &'static str, description: &'static str) -> OptionSpec {
        OptionSpec::of(name, description, OptionKind::Role)
    }

    /// An optional file option.
    pub fn attachment(name: &'static str, description: &'static str) -> OptionSpec {
        OptionSpec::of(name, description, OptionKind::Attachment)
    }

    /// An optional channel option limited to `types` (any when empty).
    pub fn channel(name: &'static str, description: &'static str, types: Vec<ChannelType>) -> OptionSpec {
        OptionSpec::of(name, description, OptionKind::Channel(types))
    }

    fn of(name: &'static str, description: &'static str, kind: OptionKind) -> OptionSpec {
        OptionSpec { name, description, kind, required: false, autocomplete: false }
    }

    /// Makes the option required.
    pub fn required(mut self) -> OptionSpec {
        self.required = true;
        self
    }

    /// Turns on autocomplete (the module's `autocomplete` answers).
    pub fn autocomplete(mut self) -> OptionSpec {
        self.autocomplete = true;
        self
    }

    /// Limits a text option to `max` characters (no effect on other kinds).
    pub fn max_length(mut self, max: u16) -> OptionSpec {
        if let OptionKind::String { max_length, .. } = &mut self.kind {
            *max_length = Some(max);
        }
        self
    }

    fn to_option(&self) -> CommandOption {
        let mut option = CommandOption {
            autocomplete: None,
            channel_types: None,
            choices: None,
            description: self.description.to_owned(),
            description_localizations: None,
            kind: CommandOptionType::String,
            max_length: None,
            max_value: None,
            min_length: None,
            min_value: None,
            name: self.name.to_owned(),
            name_localizations: None,
            options: None,
            file_types: None,
            required: None,
        };
        let is_sub = matches!(self.kind, OptionKind::SubCommand(_) | OptionKind::SubCommandGroup(_));
        if !is_sub {
            option.required = Some(self.required);
        }
        if self.autocomplete {
            option.autocomplete = Some(true);
        }
        match &self.kind {
            OptionKind::SubCommand(options) => {
                option.kind = CommandOptionType::SubCommand;
                option.options = Some(options.iter().map(OptionSpec::to_option).collect());
            }
            OptionKind::SubCommandGroup(options) => {
                option.kind = CommandOptionType::SubCommandGroup;
                option.options = Some(options.iter().map(OptionSpec::to_option).collect());
            }
            OptionKind::String { min_length, max_length, choices } => {
                option.kind = CommandOptionType::String;
                option.min_length = *min_length;
                option.max_length = *max_length;
                if !choices.is_empty() {
                    option.choices = Some(
                        choices
                            .iter()
                            .map(|(name, value)| CommandOptionChoice {
                                name: (*name).to_owned(),
                                name_localizations: None,
                                value: CommandOptionChoiceValue::String((*value).to_owned()),
                            })
                            .collect(),
                    );
                }
            }
            OptionKind::Integer { min, max } => {
                option.kind = CommandOptionType::Integer;
                option.min_value = min.map(MinMax::Integer);
                option.max_value = max.map(MinMax::Integer);
            }
            OptionKind::Boolean => option.kind = CommandOptionType::Boolean,
            OptionKind::User => option.kind = CommandOptionType::User,
            OptionKind::Role => option.kind = CommandOptionType::Role,
            OptionKind::Attachment => option.kind = CommandOptionType::Attachment,
            OptionKind::Channel(types) => {
                option.kind = CommandOptionType::Channel;
                if !types.is_empty() {
                    option.channel_types = Some(types.clone());
                }
            }
        }
        option
    }
}

/// The options of one invocation, flattened below the subcommand path.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `["set"]` for `/config set`, `["group", "sub"]` for nested groups, empty for plain commands.
    pub path: Vec<String>,
    values: Vec<CommandDataOption>,
    /// Files attached to the invocation (Discord's `resolved.attachments`).
    attachments: Vec<Attachment>,
}

impl Options {
    /// The options of an invocation, with the subcommand path taken off the front.
    pub fn from_data(options: &[CommandDataOption]) -> Options {
        let mut path = Vec::new();
        let mut current = options.to_vec();
        loop {
            let next = match current.as_slice() {
                [only] => match &only.value {
                    CommandOptionValue::SubCommand(inner) | CommandOptionValue::SubCommandGroup(inner) => {
                        path.push(only.name.clone());
                        Some(inner.clone())
                    }
                    _ => None,
                },
                _ => None,
            };
            match next {
                Some(inner) => current = inner,
                None => break,
            }
        }
        Options { path, values: current, attachments: Vec::new() }
    }

    /// With the invocation's resolved attachments, for [`Options::attachment`].
    pub fn with_resolved(mut self, resolved: Option<&InteractionDataResolved>) -> Options {
        self.attachments = resolved.map(|r| r.attachments.values().cloned().collect()).unwrap_or_default();
        self
    }

    /// An attachment option: the file as Discord describes it (name, size, content type, CDN URL).
    pub fn attachment(&self, name: &str) -> Option<&Attachment> {
        match self.value(name)? {
            CommandOptionValue::Attachment(id) => self.attachments.iter().find(|a| a.id == *id),
            _ => None,
        }
    }

    /// The first element of the subcommand path.
    pub fn subcommand(&self) -> Option<&str> {
        self.path.first().map(String::as_str)
    }

    fn value(&self, name: &str) -> Option<&CommandOptionValue> {
        self.values.iter().find(|o| o.name == name).map(|o| &o.value)
    }

    /// A text option (also the text being typed, for autocomplete).
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.value(name)? {
            CommandOptionValue::String(s) | CommandOptionValue::Focused(s, _) => Some(s.as_str()),
            _ => None,
        }
    }

    /// An integer option (also typed digits, for autocomplete).
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.value(name)? {
            CommandOptionValue::Integer(n) => Some(*n),
            CommandOptionValue::Focused(s, _) => s.parse().ok(),
            _ => None,
        }
    }

    /// A true/false option.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.value(name)? {
            CommandOptionValue::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// A user option (or a text option holding a user mention).
    pub fn user(&self, name: &str) -> Option<u64> {
        match self.value(name)? {
            CommandOptionValue::User(id) => Some(id.get()),
            CommandOptionValue::String(s) => parse_mention(s, "@"),
            _ => None,
        }
    }

    /// A channel option.
    pub fn channel(&self, name: &str) -> Option<u64> {
        match self.value(name)? {
            CommandOptionValue::Channel(id) => Some(id.get()),
            _ => None,
        }
    }

    /// A role option.
    pub fn role(&self, name: &str) -> Option<u64> {
        match self.value(name)? {
            CommandOptionValue::Role(id) => Some(id.get()),
            _ => None,
        }
    }

    /// The option the member is typing in (autocomplete), with its current text.
    pub fn focused(&self) -> Option<(&str, &str)> {
        self.values.iter().find_map(|o| match &o.value {
            CommandOptionValue::Focused(text, _) => Some((o.name.as_str(), text.as_str())),
            _ => None,
        })
    }
}

/// Parses `<@123>`, `<@!123>`, `<#123>`, `<@&123>` or a bare id.
pub fn parse_mention(text: &str, sigil: &str) -> Option<u64> {
    let t = text.trim();
    let inner = t
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .and_then(|r| r.strip_prefix(sigil))
        .map(|r| r.trim_start_matches('!'))
        .unwrap_or(t);
    inner.parse::<u64>().ok().filter(|id| *id > 0)
}

/// Discord's rule for command and option names.
pub fn valid_name(name: &str) -> bool {
    let len = name.chars().count();
    (1..=32).contains(&len) && name.chars().all(|c| c.is_lowercase() || c.is_numeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mention_parsing() {
        assert_eq!(parse_mention("<#42>", "#"), Some(42));
        assert_eq!(parse_mention("<@!7>", "@"), Some(7));
        assert_eq!(parse_mention("<@&9>", "@&"), Some(9));
        assert_eq!(parse_mention(" 15 ", "#"), Some(15));
        assert_eq!(parse_mention("<#x>", "#"), None);
        assert_eq!(parse_mention("0", "#"), None);
    }

    #[test]
    fn names_follow_discord_rules() {
        assert!(valid_name("config"));
        assert!(valid_name("faq-search"));
        assert!(!valid_name("Config"));
        assert!(!valid_name(""));
        assert!(!valid_name("has space"));
    }

    #[test]
    fn user_menus_are_user_commands() {
        let spec = CommandSpec::user_menu("Warn member", Access::Staff);
        assert!(spec.valid_name());
        let json = serde_json::to_value(spec.to_command()).unwrap();
        assert_eq!(json["type"], 2);
        assert_eq!(json["description"], "");
        assert!(!CommandSpec::new("Warn member", "x", Access::Staff).valid_name());
    }

    #[test]
    fn commands_say_where_they_work() {
        let guild_only =
            serde_json::to_value(CommandSpec::new("ticket", "Tickets", Access::Everyone).to_command()).unwrap();
        assert_eq!(guild_only["contexts"], serde_json::json!([0]));
        assert_eq!(guild_only["integration_types"], serde_json::json!([0]));
        let spec = CommandSpec::new("privacy", "Your data", Access::Everyone).in_dms().in_dms();
        assert!(spec.works_in_dms());
        let json = serde_json::to_value(spec.to_command()).unwrap();
        assert_eq!(json["contexts"], serde_json::json!([0, 1]));
    }

    #[test]
    fn subcommand_options_are_serialised_without_required() {
        let spec = CommandSpec::new("config", "Settings", Access::Authorized).option(OptionSpec::subcommand(
            "set",
            "Change",
            vec![OptionSpec::string("key", "Key").required().autocomplete()],
        ));
        let json = serde_json::to_value(spec.to_command()).unwrap();
        let sub = &json["options"][0];
        assert_eq!(sub["type"], 1);
        assert!(sub.get("required").is_none());
        assert_eq!(sub["options"][0]["required"], true);
        assert_eq!(sub["options"][0]["autocomplete"], true);
    }
}
