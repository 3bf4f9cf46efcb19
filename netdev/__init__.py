"""Network layer: clients, queues, socket netdev, hubs, pcap (QEMU: net/)."""
