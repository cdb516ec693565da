//! The actions an input decodes into, and the decoder (`action`). The byte layout is the input
//! format of the committed corpus (fuzz/corpus/api_sequence/): change it only on purpose.

use crate::common::*;
use crate::inputs::*;
use moq_ffi::ffi::*;

/// Which subscribe function, and its own arguments.
#[derive(Clone, Copy, Debug)]
pub enum SubApi {
    /// `moq_subscribe` (data callback).
    Plain,
    /// `moq_subscribe_ex` (object and status callbacks).
    Ex,
    /// `moq_subscribe_catalog` (catalog callback).
    Catalog,
    /// `moq_subscribe_catalog_ex` (catalog and status callbacks).
    CatalogEx,
    /// `moq_fetch_group` of this group (object and status callbacks).
    Fetch(u64),
}

#[derive(Clone, Debug)]
pub struct SubHow {
    pub api: SubApi,
    /// Options (the `_ex` functions and fetch; None passes NULL).
    pub opts: Option<SubOpts>,
    /// The data / object / catalog callback.
    pub first: bool,
    /// The status callback (the `_ex` functions and fetch).
    pub status: bool,
}

#[derive(Clone, Debug)]
pub enum PubHow {
    Plain,
    Ex(u32),
    Opts(Option<PubOpts>),
}

#[derive(Clone, Debug)]
pub enum Action {
    ClientCreate,
    ClientCreateEx(Box<Cfg>),
    ClientDestroy(Sel),
    Connect {
        client: Sel,
        url: Url,
        callback: bool,
        asynchronous: bool,
    },
    Disconnect(Sel),
    IsConnected(Sel),
    ClientText {
        client: Sel,
        buf: Buf,
        which: u8,
    },
    QueryTrack {
        client: Sel,
        ns: Str,
        track: Str,
        size: Option<u8>,
    },
    Announce(Sel, Str),
    CreatePublisher {
        client: Sel,
        ns: Str,
        track: Str,
        how: PubHow,
    },
    PublisherDestroy(Sel),
    PublishData(Sel, Data, u32),
    BeginGroup(Sel, bool),
    PublishObject(Sel, Data, u64),
    EndGroup(Sel),
    Finish(Sel),
    Abort(Sel, u32),
    PublishCatalog {
        publisher: Sel,
        tracks: Vec<Track>,
        null_count: Option<usize>,
        format: u32,
    },
    Subscribe {
        client: Sel,
        ns: Str,
        track: Str,
        how: SubHow,
    },
    Unsubscribe(Sel),
    IsSubscribed(Sel),
    SubscriberDestroy(Sel),
    CatalogJson(Sel),
    Poll {
        client: Sel,
        max: usize,
        null_events: bool,
        timeout: u32,
    },
    /// `moq_subscribe_announces` (prefix None) or `moq_subscribe_announces_ex`.
    SubscribeAnnounces {
        client: Sel,
        prefix: Option<Str>,
        callback: bool,
    },
    UnsubscribeAnnounces(Sel),
    Stats {
        which: u8,
        handle: Sel,
        size: Option<u8>,
    },
    SetLog {
        level: u32,
        mode: u8,
    },
    FreeStr(u8, u64),
    Misc(u8),
    Relay {
        op: u8,
        handle: Sel,
        addr: Str,
    },
    Shutdown(u32),
    Sleep(u8),
    Defer(Box<Action>),
}

fn sub_how(input: &mut Input) -> SubHow {
    let api = match input.u8() % 5 {
        0 => SubApi::Plain,
        1 => SubApi::Ex,
        2 => SubApi::Catalog,
        3 => SubApi::CatalogEx,
        _ => SubApi::Fetch(if input.bool() {
            u64::from(input.u8() % 4)
        } else {
            input.u64()
        }),
    };
    if let SubApi::Plain | SubApi::Catalog = api {
        let first = !input.u8().is_multiple_of(8);
        return SubHow {
            api,
            opts: None,
            first,
            status: false,
        };
    }
    let opts = sub_opts(input);
    let first = !input.u8().is_multiple_of(4);
    let status = input.bool();
    SubHow {
        api,
        opts,
        first,
        status,
    }
}

const DELIVERY_MODES: &[u32] = &[MOQ_DELIVERY_STREAM, MOQ_DELIVERY_DATAGRAM, 2];

pub fn action(input: &mut Input, depth: usize) -> Action {
    let op = input.u8();
    match op % 40 {
        0 => Action::ClientCreate,
        1 | 2 => Action::ClientCreateEx(Box::new(cfg(input))),
        3 => Action::ClientDestroy(sel(input)),
        4 | 5 => Action::Connect {
            client: sel(input),
            url: url(input),
            callback: !input.u8().is_multiple_of(4),
            asynchronous: input.bool(),
        },
        6 => Action::Disconnect(sel(input)),
        7 => Action::IsConnected(sel(input)),
        8 => match input.u8() % 4 {
            3 => Action::QueryTrack {
                client: sel(input),
                ns: name(input, NAMESPACES),
                track: name(input, TRACKS),
                size: (!input.u8().is_multiple_of(8)).then(|| input.u8()),
            },
            which => Action::ClientText {
                client: sel(input),
                buf: buf(input),
                which,
            },
        },
        9 => Action::Announce(sel(input), name(input, NAMESPACES)),
        10 | 11 => Action::CreatePublisher {
            client: sel(input),
            ns: name(input, NAMESPACES),
            track: name(input, TRACKS),
            how: match input.u8() % 3 {
                0 => PubHow::Plain,
                1 => PubHow::Ex(input.interesting_u32(DELIVERY_MODES)),
                _ => PubHow::Opts(pub_opts(input)),
            },
        },
        12 => Action::PublisherDestroy(sel(input)),
        13 => Action::PublishData(sel(input), data(input), input.interesting_u32(DELIVERY_MODES)),
        // Raw JSON on a (catalog) track: reaches the catalog parser of catalog subscriptions.
        14 => Action::PublishData(sel(input), catalog_json(input), MOQ_DELIVERY_STREAM),
        15 => Action::BeginGroup(sel(input), input.bool()),
        16 | 17 => Action::PublishObject(
            sel(input),
            data(input),
            [0, 1, (1 << 62) - 1, 1 << 62, u64::MAX][input.u8() as usize % 5],
        ),
        18 => Action::EndGroup(sel(input)),
        19 => Action::Finish(sel(input)),
        20 => Action::Abort(sel(input), input.interesting_u32(&[0, 1, 65_535, 65_536])),
        21 => {
            let publisher = sel(input);
            let count = input.u8() % 5;
            let tracks = (0..count).map(|_| track(input)).collect();
            let null_count = input
                .u8()
                .is_multiple_of(8)
                .then(|| [0, 1, 1025][input.u8() as usize % 3]);
            Action::PublishCatalog {
                publisher,
                tracks,
                null_count,
                format: input.interesting_u32(&[0, 1, 2]),
            }
        }
        22..=24 => Action::Subscribe {
            client: sel(input),
            ns: name(input, NAMESPACES),
            track: name(input, TRACKS),
            how: sub_how(input),
        },
        25 => Action::Unsubscribe(sel(input)),
        26 => Action::IsSubscribed(sel(input)),
        27 => Action::SubscriberDestroy(sel(input)),
        28 => Action::CatalogJson(sel(input)),
        29 => Action::Poll {
            client: sel(input),
            max: [0, 1, 4, 16, 64][input.u8() as usize % 5],
            null_events: input.u8().is_multiple_of(8),
            timeout: [0, 0, 1, 10, 50][input.u8() as usize % 5],
        },
        30 => Action::SubscribeAnnounces {
            client: sel(input),
            prefix: None,
            callback: !input.u8().is_multiple_of(4),
        },
        31 => Action::SubscribeAnnounces {
            client: sel(input),
            prefix: Some(name(input, NAMESPACES)),
            callback: !input.u8().is_multiple_of(4),
        },
        32 => Action::UnsubscribeAnnounces(sel(input)),
        33 => Action::Stats {
            which: input.u8(),
            handle: sel(input),
            size: (!input.u8().is_multiple_of(8)).then(|| input.u8()),
        },
        34 => Action::SetLog {
            level: [
                MOQ_LOG_OFF,
                MOQ_LOG_ERROR,
                MOQ_LOG_WARN,
                MOQ_LOG_INFO,
                MOQ_LOG_DEBUG,
                MOQ_LOG_TRACE,
                6,
                MOQ_LOG_INFO,
            ][input.u8() as usize % 8],
            mode: input.u8(),
        },
        35 => Action::FreeStr(input.u8(), input.u64()),
        36 => Action::Misc(input.u8()),
        37 => {
            let op = input.u8();
            let handle = sel(input);
            let addr = name(
                input,
                &["127.0.0.1:0", "[::1]:0", "localhost:0", "127.0.0.1", "0.0.0.0:99999"],
            );
            if op.is_multiple_of(16) && input.u8() == 0 {
                // Rare: a fuzzed moq_shutdown (the relay is restarted afterwards).
                Action::Shutdown([0, 3000][input.u8() as usize % 2])
            } else {
                Action::Relay { op, handle, addr }
            }
        }
        38 => Action::Sleep(input.u8()),
        _ if depth < 3 => Action::Defer(Box::new(action(input, depth + 1))),
        _ => Action::Sleep(input.u8()),
    }
}
