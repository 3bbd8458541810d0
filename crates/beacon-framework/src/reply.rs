//! What a handler sends back: text, embeds, components, with safe defaults (no mentions).

use twilight_model::channel::message::{AllowedMentions, Component, Embed, MessageFlags};
use twilight_model::http::attachment::Attachment;

/// A message to send in answer to an interaction.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// The message text.
    pub content: Option<String>,
    /// Embeds, in order.
    pub embeds: Vec<Embed>,
    /// Buttons and menus (action rows).
    pub components: Vec<Component>,
    /// Files attached to the message.
    pub attachments: Vec<Attachment>,
    /// Only the invoking member sees it.
    pub ephemeral: bool,
    /// `None` means nobody is pinged. Modules opt in explicitly, e.g. to ping a staff role.
    pub allowed_mentions: Option<AllowedMentions>,
}

impl Reply {
    /// A text message.
    pub fn text(content: impl Into<String>) -> Reply {
        Reply { content: Some(content.into()), ..Reply::default() }
    }

    /// A message with one embed.
    pub fn embed(embed: Embed) -> Reply {
        Reply { embeds: vec![embed], ..Reply::default() }
    }

    /// Only the invoking member sees it.
    pub fn ephemeral(mut self) -> Reply {
        self.ephemeral = true;
        self
    }

    /// Adds an embed.
    pub fn with_embed(mut self, embed: Embed) -> Reply {
        self.embeds.push(embed);
        self
    }

    /// Sets the components (action rows).
    pub fn with_components(mut self, components: Vec<Component>) -> Reply {
        self.components = components;
        self
    }

    /// Attaches a file.
    pub fn with_attachment(mut self, attachment: Attachment) -> Reply {
        self.attachments.push(attachment);
        self
    }

    /// Lets the message ping exactly `mentions`.
    pub fn allow_mentions(mut self, mentions: AllowedMentions) -> Reply {
        self.allowed_mentions = Some(mentions);
        self
    }

    pub(crate) fn flags(&self) -> Option<MessageFlags> {
        self.ephemeral.then_some(MessageFlags::EPHEMERAL)
    }

    pub(crate) fn mentions(&self) -> AllowedMentions {
        self.allowed_mentions.clone().unwrap_or_default()
    }
}

/// A choice offered while the member types (autocomplete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// What the member sees (at most 100 characters).
    pub name: String,
    /// What the handler receives when it is chosen.
    pub value: String,
}

impl Choice {
    /// A choice; a name longer than Discord allows is shortened with `…`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Choice {
        let mut name: String = name.into();
        // Discord caps choice names at 100 characters.
        if name.chars().count() > 100 {
            name = name.chars().take(99).collect::<String>() + "…";
        }
        Choice { name, value: value.into() }
    }
}

/// Small constructors for message components.
pub mod components {
    use twilight_model::channel::message::Component;
    use twilight_model::channel::message::component::{
        ActionRow, Button, ButtonStyle, Label, TextInput, TextInputStyle,
    };

    /// A button that sends `custom_id` back (which must start with the module name and `:`).
    pub fn button(custom_id: impl Into<String>, label: impl Into<String>, style: ButtonStyle) -> Component {
        Component::Button(Button {
            custom_id: Some(custom_id.into()),
            disabled: false,
            emoji: None,
            id: None,
            label: Some(label.into()),
            sku_id: None,
            style,
            url: None,
        })
    }

    /// The same button, greyed out.
    pub fn disabled(component: Component) -> Component {
        match component {
            Component::Button(mut b) => {
                b.disabled = true;
                Component::Button(b)
            }
            other => other,
        }
    }

    /// One row of up to five buttons.
    pub fn row(components: Vec<Component>) -> Component {
        Component::ActionRow(ActionRow { components, id: None })
    }

    /// Discord's longest label of a modal's input.
    pub const LABEL_MAX: usize = 45;

    /// A labelled text input of a modal: `id` comes back in the submission. Required unless
    /// [`TextField::optional`]; turn it into a [`Component`] with `.into()`.
    pub fn text_input(id: impl Into<String>, label: impl Into<String>, style: TextInputStyle, max: u16) -> TextField {
        TextField {
            input: TextInput {
                custom_id: id.into(),
                id: None,
                #[allow(deprecated)]
                label: None,
                max_length: Some(max),
                min_length: None,
                placeholder: None,
                required: Some(true),
                style,
                value: None,
            },
            label: label.into(),
            description: None,
        }
    }

    /// A modal's text input being built (see [`text_input`]).
    #[derive(Debug, Clone)]
    pub struct TextField {
        input: TextInput,
        label: String,
        description: Option<String>,
    }

    impl TextField {
        /// The member may leave it empty.
        pub fn optional(mut self) -> TextField {
            self.input.required = Some(false);
            self
        }

        /// Whether the member must fill it in.
        pub fn required(mut self, required: bool) -> TextField {
            self.input.required = Some(required);
            self
        }

        /// The fewest characters accepted.
        pub fn min_length(mut self, min: u16) -> TextField {
            self.input.min_length = Some(min);
            self
        }

        /// Prefilled text (none when empty).
        pub fn value(mut self, value: Option<String>) -> TextField {
            self.input.value = value.filter(|v| !v.is_empty());
            self
        }

        /// A line under the label.
        pub fn description(mut self, text: impl Into<String>) -> TextField {
            self.description = Some(text.into());
            self
        }
    }

    impl From<TextField> for Component {
        fn from(field: TextField) -> Component {
            Component::Label(Label {
                component: Box::new(Component::TextInput(field.input)),
                description: field.description,
                id: None,
                label: field.label.chars().take(LABEL_MAX).collect(),
            })
        }
    }
}
