//! The composed libp2p behaviour and the swarm construction.

use std::time::Duration;

use libp2p::gossipsub::{self, MessageAuthenticity, ValidationMode};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    StreamProtocol, Swarm, allow_block_list, connection_limits, identify, kad, noise, tcp, yamux,
};

use super::{
    MAX_GOSSIP_BYTES, MAX_SYNC_RESPONSE_BYTES, NetworkConfig, NetworkError, SyncRequest,
    SyncResponse, Topic,
};
use ledger_core::Hash;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
}

pub(crate) fn build_swarm(
    keypair: libp2p::identity::Keypair,
    config: &NetworkConfig,
) -> Result<Swarm<Behaviour>, NetworkError> {
    let setup = |e: &dyn std::fmt::Display| NetworkError::Setup(e.to_string());
    let genesis_hash = config.genesis_hash;
    let max_peers = config.max_peers;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup(&e))?
        .with_behaviour(|key| {
            let local = key.public().to_peer_id();
            let gossipsub = gossipsub_behaviour(&genesis_hash)?;
            let sync = request_response::cbor::Behaviour::with_codec(
                request_response::cbor::codec::Codec::default()
                    .set_request_size_maximum(1024)
                    .set_response_size_maximum(MAX_SYNC_RESPONSE_BYTES as u64),
                [(StreamProtocol::new("/ledger/sync/3"), ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(10))
                    .with_max_concurrent_streams(64),
            );
            let identify = identify::Behaviour::new(identify::Config::new(
                "/ledger/1.0.0".into(),
                key.public(),
            ));
            let mut kad = kad::Behaviour::with_config(
                local,
                kad::store::MemoryStore::new(local),
                kad::Config::new(StreamProtocol::new("/ledger/kad/1.0.0")),
            );
            // Every node answers discovery queries, also when it has no public address.
            kad.set_mode(Some(kad::Mode::Server));
            let limits = connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(max_peers))
                    .with_max_established_per_peer(Some(2))
                    .with_max_pending_incoming(Some(max_peers)),
            );
            Ok(Behaviour {
                blocked: Default::default(),
                limits,
                gossipsub,
                sync,
                identify,
                kad,
            })
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    Ok(swarm)
}

fn gossipsub_behaviour(
    genesis_hash: &Hash,
) -> Result<gossipsub::Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(500))
        // No libp2p signature, source or sequence number: what the messages carry is signed by
        // its author (transactions, proposals, votes), so checking a second signature on every copy
        // would only cost time. Penalties go to the peer that delivered a message.
        .validation_mode(ValidationMode::Anonymous)
        // The application validates every message before it is relayed.
        .validate_messages()
        // Content-addressed ids: every copy of the same bytes is one message, however and by
        // whomever it is re-published, so a replay costs a hash and a cache lookup. Consensus
        // retransmission makes its bytes differ on purpose (`wire::ConsensusGossip::Resend`).
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(
                Hash::digest_parts(&[m.topic.as_str().as_bytes(), &m.data])
                    .0
                    .to_vec(),
            )
        })
        .max_transmit_size(MAX_GOSSIP_BYTES)
        .duplicate_cache_time(Duration::from_secs(120))
        // Small networks: publish to every peer subscribed, not only the mesh, so a message
        // reaches everyone in one hop.
        .flood_publish(true)
        .build()?;
    let mut behaviour = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config)?;
    let mut params = gossipsub::PeerScoreParams {
        // Local testnets run every node on one IP: co-location is expected, not an attack.
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    for topic in Topic::ALL {
        params.topics.insert(
            topic.ident(genesis_hash).hash(),
            gossipsub::TopicScoreParams {
                topic_weight: 1.0,
                // Only invalid messages count; delivery-rate terms would punish quiet honest peers.
                time_in_mesh_weight: 0.0,
                first_message_deliveries_weight: 0.0,
                mesh_message_deliveries_weight: 0.0,
                mesh_failure_penalty_weight: 0.0,
                invalid_message_deliveries_weight: -10.0,
                invalid_message_deliveries_decay: 0.9,
                ..Default::default()
            },
        );
    }
    behaviour.with_peer_score(params, gossipsub::PeerScoreThresholds::default())?;
    Ok(behaviour)
}
