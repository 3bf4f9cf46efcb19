/* dhcp_client.h - a DHCP client (RFC 2131): DISCOVER, OFFER, REQUEST, ACK. */
#ifndef TOYNIC_DHCP_CLIENT_H
#define TOYNIC_DHCP_CLIENT_H

#include <stdint.h>

#include "net.h"

struct dhcp_lease {
    uint32_t addr;      /* yiaddr */
    uint32_t mask;      /* option 1 */
    uint32_t router;    /* option 3 (first) */
    uint32_t dns;       /* option 6 (first) */
    uint32_t lease_s;   /* option 51 */
    uint32_t server;    /* option 54 */
};

/* Obtains a lease, resending every retry_ms; 0 on success (n->ip is set),
 * -1 at the deadline. Prints each step. */
int dhcp_obtain(struct net *n, struct dhcp_lease *lease, uint64_t deadline, uint32_t retry_ms);

#endif
