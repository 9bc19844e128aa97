//! The packet engine alone on the simulated link (no faults, clock frozen so
//! no timer fires): a 64-byte message sent by one engine and delivered by the
//! other, each way, in ping-pong. The baseline in the same run is the link
//! without the engine: the same frames written, moved and read by SimPhy.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use neo_transports::packet::sim::{SimConfig, SimNet, SimPhy};
use neo_transports::packet::{Engine, EngineConfig, EngineTransport};
use neo_transports::{Event, Phy, Transport, Tx};

const A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
/// Frame size of a 64-byte message: Ethernet+IPv4+UDP (42) + engine header (36).
const FRAME: usize = 42 + 36 + 64;

fn engine_each_way(c: &mut Criterion) {
    let mut g = c.benchmark_group("packet_engine_64B");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    // Two messages per iteration: one each way.
    g.throughput(Throughput::Elements(2));

    let (_net, pa, pb, clock) = SimNet::new(1, SimConfig::default());
    let ea = Engine::new(EngineConfig::new(SimPhy::mac_of(0), A, 7000));
    let mut eb = Engine::new(EngineConfig::new(SimPhy::mac_of(1), B, 7000));
    eb.add_neighbour(A, SimPhy::mac_of(0));
    let mut a = EngineTransport::new("sim", ea, pa, clock.clone());
    let mut b = EngineTransport::new("sim", eb, pb, clock.clone());
    a.engine().add_neighbour(B, SimPhy::mac_of(1));
    b.listen(SocketAddr::V4(SocketAddrV4::new(B, 7000)))
        .unwrap();
    let conn = a
        .connect(SocketAddr::V4(SocketAddrV4::new(B, 7000)))
        .unwrap();
    let mut connected = false;
    for _ in 0..10 {
        a.poll(&mut |e: Event<'_>, _: &mut dyn Tx| {
            connected |= matches!(e, Event::Connected { .. })
        })
        .unwrap();
        b.poll(&mut |_: Event<'_>, _: &mut dyn Tx| {}).unwrap();
        // Frames arrive after the link delay.
        clock.advance(Duration::from_micros(20));
    }
    assert!(connected);
    let msg = [0x5au8; 64];
    let mut got = 0u64;
    g.bench_function("neo_engine_send_and_deliver", |bch| {
        bch.iter(|| {
            a.tx().send_parts(conn, &[&msg]).unwrap();
            a.poll(&mut |_: Event<'_>, _: &mut dyn Tx| {}).unwrap();
            clock.advance(Duration::from_micros(20));
            b.poll(&mut |e: Event<'_>, tx: &mut dyn Tx| {
                if let Event::Message { conn, data } = e {
                    tx.send_parts(conn, &[data]).unwrap();
                }
            })
            .unwrap();
            clock.advance(Duration::from_micros(20));
            a.poll(&mut |e: Event<'_>, _: &mut dyn Tx| {
                got += matches!(e, Event::Message { .. }) as u64
            })
            .unwrap();
        })
    });
    assert!(got > 0 && a.stats().retransmits == 0, "{:?}", a.stats());

    let (_net, mut pa, mut pb, clock) = SimNet::new(2, SimConfig::default());
    let frame = [0x5au8; FRAME];
    g.bench_function("raw_sim_link_frame_each_way", |bch| {
        bch.iter(|| {
            let hop = |tx: &mut SimPhy, rx: &mut SimPhy| {
                tx.tx_with(FRAME, &mut |f| f.copy_from_slice(&frame))
                    .unwrap();
                tx.flush().unwrap();
                clock.advance(Duration::from_micros(20));
                rx.rx_burst(8, &mut |f| {
                    black_box(f);
                })
                .unwrap();
            };
            hop(&mut pa, &mut pb);
            hop(&mut pb, &mut pa);
        })
    });
    g.finish();
}

criterion_group!(benches, engine_each_way);
criterion_main!(benches);
