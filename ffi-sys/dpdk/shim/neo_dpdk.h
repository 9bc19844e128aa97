/* Neo's C shim over DPDK: the static inline functions and macros Rust cannot
 * call (rx/tx bursts, mbuf alloc/free/data), and port setup, whose
 * configuration structs are large unions better filled in C. */
#ifndef NEO_DPDK_H
#define NEO_DPDK_H
#include <stddef.h>
#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;

uint16_t neo_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t neo_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *neo_pktmbuf_alloc(struct rte_mempool *pool);
void neo_pktmbuf_free(struct rte_mbuf *m);
/* Grows the packet by len bytes; returns the start of them, or NULL. */
uint8_t *neo_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
/* First segment's data and length. */
const uint8_t *neo_mbuf_data(const struct rte_mbuf *m);
uint16_t neo_mbuf_data_len(const struct rte_mbuf *m);
uint16_t neo_mbuf_nb_segs(const struct rte_mbuf *m);
/* rte_errno of the calling thread. */
int neo_rte_errno(void);
/* One RX and one TX queue, promiscuous, started. Returns 0 or -errno and
 * writes what failed into err. */
int neo_port_setup(uint16_t port, struct rte_mempool *pool, uint16_t rx_desc, uint16_t tx_desc,
                   char *err, size_t err_len);
/* The port's MTU-sized maximum frame it accepts. */
int neo_port_mtu(uint16_t port, uint16_t *mtu);

#endif
