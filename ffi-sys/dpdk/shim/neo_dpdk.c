#include "neo_dpdk.h"

#include <stdio.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

uint16_t neo_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
    return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t neo_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
    return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *neo_pktmbuf_alloc(struct rte_mempool *pool) { return rte_pktmbuf_alloc(pool); }

void neo_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

uint8_t *neo_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
    return (uint8_t *)rte_pktmbuf_append(m, len);
}

const uint8_t *neo_mbuf_data(const struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, const uint8_t *); }

uint16_t neo_mbuf_data_len(const struct rte_mbuf *m) { return m->data_len; }

uint16_t neo_mbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }

int neo_rte_errno(void) { return rte_errno; }

int neo_port_setup(uint16_t port, struct rte_mempool *pool, uint16_t rx_desc, uint16_t tx_desc,
                   char *err, size_t err_len)
{
    struct rte_eth_conf conf;
    struct rte_eth_dev_info info;
    int socket = rte_eth_dev_socket_id(port);
    int rc;

    memset(&conf, 0, sizeof(conf));
    if ((rc = rte_eth_dev_info_get(port, &info)) != 0) {
        snprintf(err, err_len, "rte_eth_dev_info_get: %s", rte_strerror(-rc));
        return rc;
    }
    if ((rc = rte_eth_dev_configure(port, 1, 1, &conf)) != 0) {
        snprintf(err, err_len, "rte_eth_dev_configure: %s", rte_strerror(-rc));
        return rc;
    }
    if ((rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rx_desc, &tx_desc)) != 0) {
        snprintf(err, err_len, "rte_eth_dev_adjust_nb_rx_tx_desc: %s", rte_strerror(-rc));
        return rc;
    }
    if ((rc = rte_eth_rx_queue_setup(port, 0, rx_desc, socket < 0 ? 0 : socket, NULL, pool)) != 0) {
        snprintf(err, err_len, "rte_eth_rx_queue_setup: %s", rte_strerror(-rc));
        return rc;
    }
    if ((rc = rte_eth_tx_queue_setup(port, 0, tx_desc, socket < 0 ? 0 : socket, NULL)) != 0) {
        snprintf(err, err_len, "rte_eth_tx_queue_setup: %s", rte_strerror(-rc));
        return rc;
    }
    if ((rc = rte_eth_dev_start(port)) != 0) {
        snprintf(err, err_len, "rte_eth_dev_start: %s", rte_strerror(-rc));
        return rc;
    }
    /* Not every virtual device supports promiscuous mode; unicast to our MAC
     * is all the engine needs, so a refusal is not an error. */
    (void)rte_eth_promiscuous_enable(port);
    return 0;
}

int neo_port_mtu(uint16_t port, uint16_t *mtu) { return rte_eth_dev_get_mtu(port, mtu); }
