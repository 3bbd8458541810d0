//! The asker's language for the bot's own words.
//!
//! LLM answers are written in the asker's language by the model (see [`crate::grounded`]); an
//! extractive answer quotes the knowledge base as it is written, but everything Beacon says around
//! it — the abstention, the source line, the buttons, the feedback replies — is in the language of
//! the question. The language is detected from the question's text (trigram statistics over the
//! languages Beacon speaks), falling back to the member's Discord locale when the text is too short
//! or ambiguous to tell, and to English last.
//!
//! ```
//! use beacon_support::i18n::Lang;
//!
//! let lang = Lang::for_question("¿Cómo puedo recuperar mi contraseña si perdí el correo?", None);
//! assert_eq!(lang, Lang::Es);
//! assert_eq!(Lang::for_question("ok?", Some("pt-BR")), Lang::Pt);
//! println!("{}", lang.strings().human);
//! ```

use whatlang::{Detector, Lang as Detected};

/// A language Beacon has its own words in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// English (also the fallback).
    #[default]
    En,
    /// Spanish.
    Es,
    /// French.
    Fr,
    /// German.
    De,
    /// Portuguese.
    Pt,
    /// Italian.
    It,
    /// Dutch.
    Nl,
    /// Polish.
    Pl,
    /// Russian.
    Ru,
    /// Turkish.
    Tr,
    /// Japanese.
    Ja,
    /// Chinese.
    Zh,
}

/// Every language, in declaration order.
pub const ALL: [Lang; 12] = [
    Lang::En,
    Lang::Es,
    Lang::Fr,
    Lang::De,
    Lang::Pt,
    Lang::It,
    Lang::Nl,
    Lang::Pl,
    Lang::Ru,
    Lang::Tr,
    Lang::Ja,
    Lang::Zh,
];

/// Below this many letters the statistics are too thin to overrule the member's locale.
const MIN_LETTERS: usize = 12;

/// Trigram confidence (0–1) needed to break a tie between languages.
const MIN_CONFIDENCE: f64 = 0.5;

/// Function words a question must contain before its language is trusted over the locale.
const MIN_FUNCTION_WORDS: usize = 2;

/// Frequent function words of the Latin-script languages (lower case, split at apostrophes).
const LATIN: [(Lang, &[&str]); 9] = [
    (
        Lang::En,
        &[
            "the", "is", "are", "a", "an", "how", "what", "where", "when", "why", "do", "does", "did", "can", "i",
            "my", "me", "you", "your", "to", "of", "in", "on", "for", "with", "it", "this", "that", "and", "or", "not",
            "if", "be", "have", "has", "there", "which", "who", "get", "from", "at", "we", "our", "should", "will",
            "would", "doesn", "don", "isn", "t", "any", "way",
        ],
    ),
    (
        Lang::Es,
        &[
            "el", "la", "los", "las", "es", "un", "una", "cómo", "qué", "dónde", "cuándo", "por", "para", "con", "mi",
            "mis", "se", "del", "y", "puedo", "está", "están", "hay", "lo", "al", "tengo", "perdí", "también", "pero",
            "cuál", "mí", "sí", "ya", "muy", "esto", "este", "esta", "de", "en", "que",
        ],
    ),
    (
        Lang::Fr,
        &[
            "le", "la", "les", "est", "un", "une", "comment", "quoi", "où", "quand", "pourquoi", "je", "mon", "ma",
            "mes", "vous", "votre", "du", "des", "et", "ou", "ne", "pas", "pour", "avec", "sur", "dans", "il", "elle",
            "ce", "cette", "ai", "au", "aux", "qu", "puis", "j", "c", "l", "d", "n", "peux", "obtenir", "de", "en",
            "que",
        ],
    ),
    (
        Lang::De,
        &[
            "der", "die", "das", "ist", "ein", "eine", "wie", "was", "wo", "wann", "warum", "ich", "mein", "meine",
            "mich", "mir", "du", "dein", "sie", "zu", "von", "auf", "für", "mit", "und", "oder", "nicht", "kann",
            "wenn", "habe", "hat", "es", "den", "dem", "zurück", "kein", "keinen", "bekomme", "gibt", "auch",
        ],
    ),
    (
        Lang::Pt,
        &[
            "o", "os", "as", "é", "um", "uma", "como", "onde", "quando", "por", "para", "com", "meu", "minha", "eu",
            "você", "do", "da", "dos", "das", "em", "no", "na", "não", "posso", "faço", "está", "tem", "ao", "perdi",
            "isso", "também", "mas", "de", "que", "se",
        ],
    ),
    (
        Lang::It,
        &[
            "il", "lo", "gli", "è", "un", "una", "come", "cosa", "dove", "quando", "perché", "io", "mio", "mia",
            "posso", "di", "del", "della", "su", "per", "con", "non", "ho", "ha", "sono", "al", "alla", "che", "anche",
            "ma", "questo", "e", "se", "l",
        ],
    ),
    (
        Lang::Nl,
        &[
            "de", "het", "een", "is", "hoe", "wat", "waar", "wanneer", "waarom", "ik", "mijn", "je", "jij", "u", "van",
            "op", "voor", "met", "en", "niet", "kan", "als", "heb", "heeft", "er", "naar", "geen", "dat", "die", "om",
            "te", "ook", "meer",
        ],
    ),
    (
        Lang::Pl,
        &[
            "jak", "co", "gdzie", "kiedy", "dlaczego", "nie", "jest", "się", "mój", "moja", "moje", "mogę", "w", "z",
            "na", "do", "i", "lub", "czy", "to", "ten", "ta", "że", "od", "po", "dla", "jeśli", "mam", "mnie", "mojej",
        ],
    ),
    (
        Lang::Tr,
        &[
            "bir", "ve", "bu", "ne", "nasıl", "nerede", "neden", "ben", "benim", "sen", "için", "ile", "mi", "mı",
            "mu", "mü", "değil", "var", "yok", "da", "de", "çok", "ama", "veya", "ki", "yoksa", "nasil",
        ],
    ),
];

impl Lang {
    /// The language of a Discord locale (`en-US`, `pt-BR`, `zh-TW`, `es-419`, …), when Beacon
    /// speaks it.
    pub fn from_locale(locale: &str) -> Option<Lang> {
        let primary = locale.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
        Some(match primary.as_str() {
            "en" => Lang::En,
            "es" => Lang::Es,
            "fr" => Lang::Fr,
            "de" => Lang::De,
            "pt" => Lang::Pt,
            "it" => Lang::It,
            "nl" => Lang::Nl,
            "pl" => Lang::Pl,
            "ru" => Lang::Ru,
            "tr" => Lang::Tr,
            "ja" => Lang::Ja,
            "zh" => Lang::Zh,
            _ => return None,
        })
    }

    /// The language a text is written in, when the text says so clearly enough.
    ///
    /// Support questions are short, where character trigrams alone mislead (whatlang calls
    /// "How do I reset my password if I lost access to my email?" Portuguese), so the script
    /// decides first, then the language's function words, and trigrams only break ties.
    pub fn detect(text: &str) -> Option<Lang> {
        let kana = text.chars().any(|c| matches!(c, '\u{3040}'..='\u{30ff}'));
        let han = text.chars().filter(|c| matches!(c, '\u{4e00}'..='\u{9fff}')).count();
        let cyrillic = text.chars().filter(|c| matches!(c, '\u{0400}'..='\u{04ff}')).count();
        if kana {
            return Some(Lang::Ja);
        }
        if han >= 2 {
            return Some(Lang::Zh);
        }
        if cyrillic >= 4 {
            return Some(Lang::Ru);
        }
        let letters = text.chars().filter(|c| c.is_alphabetic()).count();
        if letters < MIN_LETTERS {
            return None;
        }
        let lower = text.to_lowercase();
        let mut scores: Vec<(Lang, usize)> = LATIN
            .iter()
            .map(|(lang, words)| {
                let hits = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| words.contains(w)).count();
                (*lang, hits)
            })
            .collect();
        scores.sort_by_key(|s| std::cmp::Reverse(s.1));
        let best = scores[0].1;
        if best < MIN_FUNCTION_WORDS {
            return None;
        }
        let tied: Vec<Lang> = scores.iter().filter(|(_, n)| *n == best).map(|(l, _)| *l).collect();
        if let [only] = tied.as_slice() {
            return Some(*only);
        }
        let detector = Detector::with_allowlist(tied.iter().map(|l| l.detected()).collect());
        let info = detector.detect(text)?;
        if info.confidence() < MIN_CONFIDENCE {
            return None;
        }
        tied.into_iter().find(|l| l.detected() == info.lang())
    }

    /// The language to answer a question in: the text's, else the locale's, else English.
    pub fn for_question(text: &str, locale: Option<&str>) -> Lang {
        Lang::detect(text).or_else(|| locale.and_then(Lang::from_locale)).unwrap_or(Lang::En)
    }

    /// The language for a reply to a click (no text to go by): the locale's, else English.
    pub fn for_locale(locale: Option<&str>) -> Lang {
        locale.and_then(Lang::from_locale).unwrap_or(Lang::En)
    }

    /// Frequent function words of this language (none listed for English, Russian, Japanese and
    /// Chinese: English has its own list in [`crate::confidence`], the others are told by script).
    pub fn function_words(self) -> &'static [&'static str] {
        if self == Lang::En {
            return &[];
        }
        LATIN.iter().find(|(lang, _)| *lang == self).map_or(&[], |(_, words)| words)
    }

    /// ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
            Lang::Fr => "fr",
            Lang::De => "de",
            Lang::Pt => "pt",
            Lang::It => "it",
            Lang::Nl => "nl",
            Lang::Pl => "pl",
            Lang::Ru => "ru",
            Lang::Tr => "tr",
            Lang::Ja => "ja",
            Lang::Zh => "zh",
        }
    }

    fn detected(self) -> Detected {
        match self {
            Lang::En => Detected::Eng,
            Lang::Es => Detected::Spa,
            Lang::Fr => Detected::Fra,
            Lang::De => Detected::Deu,
            Lang::Pt => Detected::Por,
            Lang::It => Detected::Ita,
            Lang::Nl => Detected::Nld,
            Lang::Pl => Detected::Pol,
            Lang::Ru => Detected::Rus,
            Lang::Tr => Detected::Tur,
            Lang::Ja => Detected::Jpn,
            Lang::Zh => Detected::Cmn,
        }
    }

    /// Beacon's words in this language.
    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::En => &EN,
            Lang::Es => &ES,
            Lang::Fr => &FR,
            Lang::De => &DE,
            Lang::Pt => &PT,
            Lang::It => &IT,
            Lang::Nl => &NL,
            Lang::Pl => &PL,
            Lang::Ru => &RU,
            Lang::Tr => &TR,
            Lang::Ja => &JA,
            Lang::Zh => &ZH,
        }
    }
}

/// What the support module says to members, in one language.
#[derive(Debug)]
pub struct Strings {
    /// `/ask` or a mention without a question.
    pub empty_question: &'static str,
    /// An injection attempt was declined.
    pub refused: &'static str,
    /// Nothing in the knowledge base answers the question.
    pub abstain: &'static str,
    /// Label of the line naming an extractive answer's source.
    pub source: &'static str,
    /// Label of the "this helped" feedback button.
    pub helpful: &'static str,
    /// Label of the "this did not help" feedback button.
    pub not_helpful: &'static str,
    /// The button that opens a ticket; says plainly it reaches a person.
    pub human: &'static str,
    /// Reply to positive feedback.
    pub thanks: &'static str,
    /// Reply to negative feedback, offering a human.
    pub sorry: &'static str,
    /// The member asked for a human but the guild has no ticket desk.
    pub no_ticket_desk: &'static str,
    /// A button of a message Beacon no longer acts on.
    pub stale_button: &'static str,
    /// Feedback on an answer that no longer exists.
    pub answer_gone: &'static str,
    /// Answering failed after a streamed answer was already shown.
    pub failed: &'static str,
    /// A ticket was opened from an answer; `{place}` is replaced by the ticket's channel.
    pub ticket_opened: &'static str,
    /// The default rate-limit message; `{seconds}` is replaced.
    pub cooldown: &'static str,
}

/// Beacon's own words in English.
pub static EN: Strings = Strings {
    empty_question: "Ask me a question and I'll look it up.",
    refused: "I can only answer questions about this community from its knowledge base. Try asking it another way, or talk to a human.",
    abstain: "I couldn't find this in the server's knowledge base, so I won't guess. A member of staff can help — use the button below.",
    source: "Source",
    helpful: "👍 Helpful",
    not_helpful: "👎 Not helpful",
    human: "Talk to a human",
    thanks: "Thanks — glad it helped!",
    sorry: "Sorry it didn't help. Want to talk to a human?",
    no_ticket_desk: "The ticket desk isn't set up in this server; please ask a moderator directly.",
    stale_button: "This button is out of date.",
    answer_gone: "I can't find that answer any more.",
    failed: "Sorry, something went wrong while answering. Please try again.",
    ticket_opened: "I've opened a ticket for you: {place}. Staff will be with you soon.",
    cooldown: "You're asking faster than I can answer — try again in {seconds}s.",
};

static ES: Strings = Strings {
    empty_question: "Hazme una pregunta y la buscaré.",
    refused: "Solo puedo responder preguntas sobre esta comunidad a partir de su base de conocimiento. Prueba a preguntarlo de otra forma o habla con una persona.",
    abstain: "No he encontrado esto en la base de conocimiento del servidor, así que no voy a adivinar. El equipo puede ayudarte: usa el botón de abajo.",
    source: "Fuente",
    helpful: "👍 Útil",
    not_helpful: "👎 No me sirvió",
    human: "Hablar con una persona",
    thanks: "¡Gracias! Me alegra haber ayudado.",
    sorry: "Siento no haber ayudado. ¿Quieres hablar con una persona?",
    no_ticket_desk: "Este servidor no tiene configurado el sistema de tickets; pregunta directamente a un moderador.",
    stale_button: "Este botón ya no es válido.",
    answer_gone: "Ya no encuentro esa respuesta.",
    failed: "Lo siento, algo salió mal al responder. Inténtalo de nuevo.",
    ticket_opened: "He abierto un ticket para ti: {place}. El equipo te atenderá pronto.",
    cooldown: "Preguntas más rápido de lo que puedo responder; inténtalo de nuevo en {seconds} s.",
};

static FR: Strings = Strings {
    empty_question: "Posez-moi une question et je chercherai la réponse.",
    refused: "Je ne peux répondre qu'aux questions sur cette communauté, à partir de sa base de connaissances. Reformulez votre question ou parlez à une personne.",
    abstain: "Je n'ai pas trouvé cela dans la base de connaissances du serveur, je préfère ne pas deviner. L'équipe peut vous aider : utilisez le bouton ci-dessous.",
    source: "Source",
    helpful: "👍 Utile",
    not_helpful: "👎 Pas utile",
    human: "Parler à une personne",
    thanks: "Merci, ravi d'avoir pu aider !",
    sorry: "Désolé de ne pas avoir aidé. Voulez-vous parler à une personne ?",
    no_ticket_desk: "Le système de tickets n'est pas configuré sur ce serveur ; demandez directement à un modérateur.",
    stale_button: "Ce bouton n'est plus valide.",
    answer_gone: "Je ne retrouve plus cette réponse.",
    failed: "Désolé, un problème est survenu pendant la réponse. Veuillez réessayer.",
    ticket_opened: "J'ai ouvert un ticket pour vous : {place}. L'équipe vous répondra bientôt.",
    cooldown: "Vous posez des questions plus vite que je ne peux répondre ; réessayez dans {seconds} s.",
};

static DE: Strings = Strings {
    empty_question: "Stell mir eine Frage, und ich schlage sie nach.",
    refused: "Ich kann nur Fragen zu dieser Community aus ihrer Wissensdatenbank beantworten. Formuliere die Frage anders oder sprich mit einem Menschen.",
    abstain: "Dazu habe ich in der Wissensdatenbank des Servers nichts gefunden, also rate ich nicht. Das Team hilft dir gern – nutze den Button unten.",
    source: "Quelle",
    helpful: "👍 Hilfreich",
    not_helpful: "👎 Nicht hilfreich",
    human: "Mit einem Menschen sprechen",
    thanks: "Danke – schön, dass es geholfen hat!",
    sorry: "Schade, dass es nicht geholfen hat. Möchtest du mit einem Menschen sprechen?",
    no_ticket_desk: "Auf diesem Server ist kein Ticketsystem eingerichtet; bitte wende dich direkt an einen Moderator.",
    stale_button: "Dieser Button ist veraltet.",
    answer_gone: "Diese Antwort finde ich nicht mehr.",
    failed: "Beim Antworten ist leider etwas schiefgegangen. Bitte versuch es noch einmal.",
    ticket_opened: "Ich habe ein Ticket für dich eröffnet: {place}. Das Team meldet sich bald.",
    cooldown: "Du fragst schneller, als ich antworten kann – versuch es in {seconds} s noch einmal.",
};

static PT: Strings = Strings {
    empty_question: "Faça uma pergunta e eu procuro a resposta.",
    refused: "Só posso responder a perguntas sobre esta comunidade com base na sua base de conhecimento. Tente perguntar de outra forma ou fale com uma pessoa.",
    abstain: "Não encontrei isso na base de conhecimento do servidor, então não vou adivinhar. A equipe pode ajudar: use o botão abaixo.",
    source: "Fonte",
    helpful: "👍 Útil",
    not_helpful: "👎 Não ajudou",
    human: "Falar com uma pessoa",
    thanks: "Obrigado! Que bom que ajudou.",
    sorry: "Desculpe não ter ajudado. Quer falar com uma pessoa?",
    no_ticket_desk: "Este servidor não tem o sistema de tickets configurado; fale diretamente com um moderador.",
    stale_button: "Este botão está desatualizado.",
    answer_gone: "Não encontro mais essa resposta.",
    failed: "Desculpe, algo deu errado ao responder. Tente novamente.",
    ticket_opened: "Abri um ticket para você: {place}. A equipe vai atender você em breve.",
    cooldown: "Você está perguntando mais rápido do que consigo responder; tente de novo em {seconds} s.",
};

static IT: Strings = Strings {
    empty_question: "Fammi una domanda e cercherò la risposta.",
    refused: "Posso rispondere solo a domande su questa community, in base alla sua knowledge base. Prova a chiederlo in un altro modo o parla con una persona.",
    abstain: "Non ho trovato questa informazione nella knowledge base del server, quindi non tirerò a indovinare. Lo staff può aiutarti: usa il pulsante qui sotto.",
    source: "Fonte",
    helpful: "👍 Utile",
    not_helpful: "👎 Non utile",
    human: "Parla con una persona",
    thanks: "Grazie, felice di esserti stato utile!",
    sorry: "Mi dispiace non esserti stato utile. Vuoi parlare con una persona?",
    no_ticket_desk: "Su questo server il sistema di ticket non è configurato; chiedi direttamente a un moderatore.",
    stale_button: "Questo pulsante non è più valido.",
    answer_gone: "Non trovo più quella risposta.",
    failed: "Spiacente, qualcosa è andato storto durante la risposta. Riprova.",
    ticket_opened: "Ho aperto un ticket per te: {place}. Lo staff ti risponderà presto.",
    cooldown: "Stai facendo domande più in fretta di quanto io riesca a rispondere: riprova tra {seconds} s.",
};

static NL: Strings = Strings {
    empty_question: "Stel me een vraag, dan zoek ik het op.",
    refused: "Ik kan alleen vragen over deze community beantwoorden vanuit de kennisbank. Stel je vraag anders of praat met een mens.",
    abstain: "Ik heb dit niet in de kennisbank van de server gevonden, dus ik ga niet gokken. Het team kan je helpen: gebruik de knop hieronder.",
    source: "Bron",
    helpful: "👍 Nuttig",
    not_helpful: "👎 Niet nuttig",
    human: "Praat met een mens",
    thanks: "Bedankt, fijn dat het hielp!",
    sorry: "Jammer dat het niet hielp. Wil je met een mens praten?",
    no_ticket_desk: "Deze server heeft geen ticketsysteem ingesteld; vraag het rechtstreeks aan een moderator.",
    stale_button: "Deze knop is verouderd.",
    answer_gone: "Ik kan dat antwoord niet meer vinden.",
    failed: "Sorry, er ging iets mis bij het antwoorden. Probeer het opnieuw.",
    ticket_opened: "Ik heb een ticket voor je geopend: {place}. Het team helpt je zo snel mogelijk.",
    cooldown: "Je vraagt sneller dan ik kan antwoorden; probeer het over {seconds} s opnieuw.",
};

static PL: Strings = Strings {
    empty_question: "Zadaj mi pytanie, a poszukam odpowiedzi.",
    refused: "Mogę odpowiadać tylko na pytania o tę społeczność na podstawie jej bazy wiedzy. Spróbuj zapytać inaczej albo porozmawiaj z człowiekiem.",
    abstain: "Nie znalazłem tego w bazie wiedzy serwera, więc nie będę zgadywać. Zespół może pomóc — użyj przycisku poniżej.",
    source: "Źródło",
    helpful: "👍 Pomocne",
    not_helpful: "👎 Niepomocne",
    human: "Porozmawiaj z człowiekiem",
    thanks: "Dzięki — cieszę się, że pomogło!",
    sorry: "Przykro mi, że nie pomogło. Chcesz porozmawiać z człowiekiem?",
    no_ticket_desk: "Na tym serwerze nie skonfigurowano systemu zgłoszeń; zapytaj bezpośrednio moderatora.",
    stale_button: "Ten przycisk jest nieaktualny.",
    answer_gone: "Nie mogę już znaleźć tej odpowiedzi.",
    failed: "Przepraszam, coś poszło nie tak podczas odpowiadania. Spróbuj ponownie.",
    ticket_opened: "Otworzyłem dla ciebie zgłoszenie: {place}. Zespół wkrótce się odezwie.",
    cooldown: "Pytasz szybciej, niż mogę odpowiadać — spróbuj ponownie za {seconds} s.",
};

static RU: Strings = Strings {
    empty_question: "Задайте вопрос, и я поищу ответ.",
    refused: "Я могу отвечать только на вопросы об этом сообществе по его базе знаний. Попробуйте сформулировать вопрос иначе или обратитесь к человеку.",
    abstain: "Я не нашёл этого в базе знаний сервера, поэтому не буду гадать. Команда поможет — нажмите кнопку ниже.",
    source: "Источник",
    helpful: "👍 Полезно",
    not_helpful: "👎 Не помогло",
    human: "Связаться с человеком",
    thanks: "Спасибо! Рад, что помог.",
    sorry: "Жаль, что не помог. Хотите связаться с человеком?",
    no_ticket_desk: "На этом сервере не настроена система тикетов; обратитесь напрямую к модератору.",
    stale_button: "Эта кнопка устарела.",
    answer_gone: "Я больше не могу найти этот ответ.",
    failed: "Извините, при ответе что-то пошло не так. Попробуйте ещё раз.",
    ticket_opened: "Я открыл для вас тикет: {place}. Команда скоро ответит.",
    cooldown: "Вы спрашиваете быстрее, чем я успеваю отвечать, — попробуйте снова через {seconds} с.",
};

static TR: Strings = Strings {
    empty_question: "Bana bir soru sor, senin için araştırayım.",
    refused: "Yalnızca bu toplulukla ilgili soruları bilgi bankasına dayanarak yanıtlayabilirim. Soruyu başka türlü sormayı dene ya da bir insanla konuş.",
    abstain: "Bunu sunucunun bilgi bankasında bulamadım, bu yüzden tahmin yürütmeyeceğim. Ekip yardımcı olabilir: aşağıdaki düğmeyi kullan.",
    source: "Kaynak",
    helpful: "👍 Faydalı",
    not_helpful: "👎 Faydalı değil",
    human: "Bir insanla konuş",
    thanks: "Teşekkürler, yardımcı olabildiğime sevindim!",
    sorry: "Yardımcı olamadığım için üzgünüm. Bir insanla konuşmak ister misin?",
    no_ticket_desk: "Bu sunucuda destek talebi sistemi kurulmamış; lütfen doğrudan bir moderatöre sor.",
    stale_button: "Bu düğmenin süresi dolmuş.",
    answer_gone: "O yanıtı artık bulamıyorum.",
    failed: "Üzgünüm, yanıtlarken bir şeyler ters gitti. Lütfen tekrar dene.",
    ticket_opened: "Senin için bir destek talebi açtım: {place}. Ekip kısa süre içinde ilgilenecek.",
    cooldown: "Yanıtlayabileceğimden hızlı soruyorsun; {seconds} sn sonra tekrar dene.",
};

static JA: Strings = Strings {
    empty_question: "質問を送ってください。調べてお答えします。",
    refused: "このコミュニティについての質問に、ナレッジベースをもとに答えることしかできません。別の言い方で質問するか、スタッフに相談してください。",
    abstain: "サーバーのナレッジベースに該当する情報が見つからなかったため、推測での回答は控えます。スタッフがお手伝いできます。下のボタンを使ってください。",
    source: "出典",
    helpful: "👍 役に立った",
    not_helpful: "👎 役に立たなかった",
    human: "スタッフに相談する",
    thanks: "ありがとうございます。お役に立ててよかったです！",
    sorry: "お役に立てずすみません。スタッフに相談しますか？",
    no_ticket_desk: "このサーバーではチケット機能が設定されていません。モデレーターに直接お問い合わせください。",
    stale_button: "このボタンは無効になっています。",
    answer_gone: "その回答はもう見つかりません。",
    failed: "回答中に問題が発生しました。もう一度お試しください。",
    ticket_opened: "チケットを作成しました: {place}。スタッフがまもなく対応します。",
    cooldown: "質問のペースが速すぎます。{seconds} 秒後にもう一度お試しください。",
};

static ZH: Strings = Strings {
    empty_question: "请向我提问，我会帮你查找答案。",
    refused: "我只能根据本社区的知识库回答与本社区相关的问题。请换一种方式提问，或联系真人工作人员。",
    abstain: "我在服务器的知识库中没有找到相关内容，因此不会猜测。工作人员可以帮助你，请使用下方按钮。",
    source: "来源",
    helpful: "👍 有帮助",
    not_helpful: "👎 没有帮助",
    human: "联系真人客服",
    thanks: "谢谢，很高兴能帮上忙！",
    sorry: "抱歉没能帮上忙。要联系真人客服吗？",
    no_ticket_desk: "此服务器尚未设置工单系统，请直接联系管理员。",
    stale_button: "此按钮已失效。",
    answer_gone: "找不到该回答了。",
    failed: "抱歉，回答时出了点问题，请重试。",
    ticket_opened: "已为你创建工单：{place}。工作人员会尽快处理。",
    cooldown: "你提问的速度太快了，请在 {seconds} 秒后重试。",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_language_of_ordinary_support_questions() {
        let cases = [
            ("How do I reset my password if I lost access to my email?", Lang::En),
            ("¿Cómo puedo recuperar mi contraseña si perdí el acceso a mi correo?", Lang::Es),
            ("Comment puis-je réinitialiser mon mot de passe si j'ai perdu mon adresse e-mail ?", Lang::Fr),
            ("Wie kann ich mein Passwort zurücksetzen, wenn ich keinen Zugriff auf meine E-Mail habe?", Lang::De),
            ("Como faço para redefinir minha senha se perdi o acesso ao meu e-mail?", Lang::Pt),
            ("Come posso reimpostare la password se ho perso l'accesso alla mia email?", Lang::It),
            ("Hoe kan ik mijn wachtwoord opnieuw instellen als ik geen toegang meer heb tot mijn e-mail?", Lang::Nl),
            ("Jak mogę zresetować hasło, jeśli straciłem dostęp do mojej poczty?", Lang::Pl),
            ("Как сбросить пароль, если у меня нет доступа к почте?", Lang::Ru),
            ("E-postama erişimim yoksa şifremi nasıl sıfırlayabilirim?", Lang::Tr),
            ("メールにアクセスできない場合、パスワードをリセットするにはどうすればいいですか？", Lang::Ja),
            ("如果我无法访问我的电子邮件，如何重置密码？", Lang::Zh),
            ("How do I get a refund?", Lang::En),
            ("my bot doesn't respond to slash commands", Lang::En),
            ("¿Dónde está mi factura?", Lang::Es),
            ("Comment obtenir un remboursement ?", Lang::Fr),
            ("Wie bekomme ich mein Geld zurück?", Lang::De),
        ];
        for (text, lang) in cases {
            assert_eq!(Lang::detect(text), Some(lang), "{text}");
            assert_eq!(Lang::for_question(text, Some("en-US")), lang, "{text}");
        }
    }

    #[test]
    fn short_text_falls_back_to_the_locale_then_english() {
        assert_eq!(Lang::detect("ok?"), None);
        assert_eq!(Lang::for_question("ok?", Some("fr")), Lang::Fr);
        assert_eq!(Lang::for_question("ok?", Some("ko")), Lang::En);
        assert_eq!(Lang::for_question("ok?", None), Lang::En);
    }

    #[test]
    fn discord_locales_map_to_languages() {
        assert_eq!(Lang::from_locale("pt-BR"), Some(Lang::Pt));
        assert_eq!(Lang::from_locale("es-419"), Some(Lang::Es));
        assert_eq!(Lang::from_locale("zh-TW"), Some(Lang::Zh));
        assert_eq!(Lang::from_locale("en-GB"), Some(Lang::En));
        assert_eq!(Lang::from_locale("sv-SE"), None);
        assert_eq!(Lang::for_locale(Some("de")), Lang::De);
        assert_eq!(Lang::for_locale(None), Lang::En);
    }

    #[test]
    fn every_language_has_every_string_and_keeps_the_placeholder() {
        for lang in ALL {
            let s = lang.strings();
            assert_eq!(Lang::from_locale(lang.code()), Some(lang));
            for text in [
                s.empty_question,
                s.refused,
                s.abstain,
                s.source,
                s.helpful,
                s.not_helpful,
                s.human,
                s.thanks,
                s.sorry,
                s.no_ticket_desk,
                s.stale_button,
                s.answer_gone,
                s.failed,
            ] {
                assert!(!text.trim().is_empty(), "{lang:?}");
            }
            assert!(s.cooldown.contains("{seconds}"), "{lang:?}");
            assert!(s.ticket_opened.contains("{place}"), "{lang:?}");
            // Button labels fit Discord's 80-character limit.
            assert!(s.human.chars().count() <= 80 && s.helpful.chars().count() <= 80);
            if lang != Lang::En {
                assert_ne!(s.abstain, EN.abstain, "{lang:?} is untranslated");
            }
        }
    }
}
