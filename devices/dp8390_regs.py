"""DP8390 register map — toynic's `8390.h` (QEMU: the `E8390_*`/`EN*_*` defines at the top
of hw/net/ne2000.c; Linux: drivers/net/ethernet/8390/8390.h).

The one home of the chip's register offsets per page, the bits of CR, ISR/IMR, RCR, TCR,
DCR, RSR and TSR, the short names the National DP8390 datasheet gives registers and bits
(trace lines and `info ne2000` print these), the layout of the 48 KiB buffer memory and
the RTL8029 values QEMU's NE2000 answers with. Numeric constants carry Linux's names;
where Linux has none (RCR, TCR bits) the prefix is Linux's style with the datasheet's bit.
"""

from __future__ import annotations

# ---- CR: the command register, offset 0 on every page ----------------------------------

E8390_CMD = 0x00
E8390_STOP = 0x01  # STP
E8390_START = 0x02  # STA
E8390_TRANS = 0x04  # TXP
E8390_RREAD = 0x08  # RD0: remote read
E8390_RWRITE = 0x10  # RD1: remote write
E8390_NODMA = 0x20  # RD2: abort/complete remote DMA
E8390_PAGE0 = 0x00
E8390_PAGE1 = 0x40  # PS0
E8390_PAGE2 = 0x80  # PS1
E8390_PAGE3 = 0xC0
CR_PAGE_SHIFT = 6  # CR bits 7:6 (PS1, PS0) select the register page

CR_BITS = ("STP", "STA", "TXP", "RD0", "RD1", "RD2", "PS0", "PS1")

# ---- page 0: several offsets name one register for reads and another for writes ---------

EN0_CLDALO = 0x01  # read; write = EN0_STARTPG
EN0_STARTPG = 0x01
EN0_CLDAHI = 0x02  # read; write = EN0_STOPPG
EN0_STOPPG = 0x02
EN0_BOUNDARY = 0x03
EN0_TSR = 0x04  # read; write = EN0_TPSR
EN0_TPSR = 0x04
EN0_NCR = 0x05  # read; write = EN0_TCNTLO
EN0_TCNTLO = 0x05
EN0_FIFO = 0x06  # read; write = EN0_TCNTHI
EN0_TCNTHI = 0x06
EN0_ISR = 0x07
EN0_CRDALO = 0x08  # read; write = EN0_RSARLO
EN0_RSARLO = 0x08
EN0_CRDAHI = 0x09  # read; write = EN0_RSARHI
EN0_RSARHI = 0x09
EN0_RCNTLO = 0x0A  # write; read = RTL8029 ID byte 0
EN0_RCNTHI = 0x0B  # write; read = RTL8029 ID byte 1
EN0_RSR = 0x0C  # read; write = EN0_RXCR
EN0_RXCR = 0x0C
EN0_TXCR = 0x0D  # write; read = EN0_COUNTER0
EN0_COUNTER0 = 0x0D
EN0_DCFG = 0x0E  # write; read = EN0_COUNTER1
EN0_COUNTER1 = 0x0E
EN0_IMR = 0x0F  # write; read = EN0_COUNTER2
EN0_COUNTER2 = 0x0F

# ---- page 1 ------------------------------------------------------------------------------

EN1_PHYS = 0x01  # PAR0-5 at 0x01-0x06
EN1_CURPAG = 0x07
EN1_MULT = 0x08  # MAR0-7 at 0x08-0x0F

# ---- page 2 (datasheet): page-0 write-only registers read back, RNPP/LNPP, address counter

EN2_RNPP = 0x03
EN2_TPSR = 0x04
EN2_LNPP = 0x05
EN2_ACUPPER = 0x06
EN2_ACLOWER = 0x07
EN2_RXCR = 0x0C
EN2_TXCR = 0x0D
EN2_DCFG = 0x0E
EN2_IMR = 0x0F

# ---- page 3 belongs to the RTL8029 (9346CR, BPAGE, CONFIG0-3, ...) -----------------------

EN3_CONFIG2 = 0x05
EN3_CONFIG3 = 0x06
# What QEMU's NE2000 reads there: a 10BASE-T medium, full duplex.
EN3_CONFIG2_10BASE_T = 0x40
EN3_CONFIG3_FULL_DUPLEX = 0x40

# The RTL8029's chip ID, read at page 0 offsets 0x0A/0x0B ('P', 'C'), as QEMU answers.
RTL8029_ID0 = ord("P")
RTL8029_ID1 = ord("C")

# ---- ISR and IMR (IMR bits mask ISR's; displays use ISR's names for both) ---------------

ENISR_RX = 0x01  # PRX
ENISR_TX = 0x02  # PTX
ENISR_RX_ERR = 0x04  # RXE
ENISR_TX_ERR = 0x08  # TXE
ENISR_OVER = 0x10  # OVW
ENISR_COUNTERS = 0x20  # CNT
ENISR_RDC = 0x40  # RDC
ENISR_RESET = 0x80  # RST
ENISR_ALL = 0x7F  # every bit that can raise the IRQ (RST never does)

ISR_BITS = ("PRX", "PTX", "RXE", "TXE", "OVW", "CNT", "RDC", "RST")

# ---- RCR, TCR, DCR -----------------------------------------------------------------------

ENRCR_SEP = 0x01
ENRCR_AR = 0x02
ENRCR_AB = 0x04
ENRCR_AM = 0x08
ENRCR_PRO = 0x10
ENRCR_MON = 0x20

RCR_BITS = ("SEP", "AR", "AB", "AM", "PRO", "MON")

ENTCR_CRC = 0x01  # inhibit the CRC
ENTCR_LB0 = 0x02
ENTCR_LB1 = 0x04
ENTCR_ATD = 0x08
ENTCR_OFST = 0x10
ENTCR_LB = ENTCR_LB0 | ENTCR_LB1  # the loopback mode field
TCR_LB_SHIFT = 1
# LB1:LB0 — 0 normal; 1 internal (through the controller); 2 through the ENDEC; 3 external
# (through the transceiver and, on coax, the cable).
TCR_LB_MODES = ("normal", "internal", "endec", "external")

TCR_BITS = ("CRC", "LB0", "LB1", "ATD", "OFST")

ENDCFG_WTS = 0x01  # word-wide remote DMA
ENDCFG_BOS = 0x02

# ---- RSR and TSR -------------------------------------------------------------------------

ENRSR_RXOK = 0x01  # PRX
ENRSR_CRC = 0x02
ENRSR_FAE = 0x04
ENRSR_FO = 0x08
ENRSR_MPA = 0x10
ENRSR_PHY = 0x20  # multicast or broadcast destination
ENRSR_DIS = 0x40
ENRSR_DEF = 0x80

ENTSR_PTX = 0x01
ENTSR_ND = 0x02
ENTSR_COL = 0x04
ENTSR_ABT = 0x08
ENTSR_CRS = 0x10
ENTSR_FU = 0x20
ENTSR_CDH = 0x40
ENTSR_OWC = 0x80

# ---- network tally counters (CNTR0-2, page 0 reads 0x0D-0x0F; cleared when read) -------

CNTR_FAE = 0  # CNTR0: frame alignment errors
CNTR_CRC = 1  # CNTR1: CRC errors
CNTR_MPA = 2  # CNTR2: missed packets
CNTR_NAMES = ("CNTR0", "CNTR1", "CNTR2")
CNTR_MAX = 0xC0  # a counter stops at 192; reaching it sets ISR.CNT

# ---- register names per page, as the datasheet (and the RTL8029 on page 3) has them -----

_PAGE1 = ("CR", "PAR0", "PAR1", "PAR2", "PAR3", "PAR4", "PAR5", "CURR",
          "MAR0", "MAR1", "MAR2", "MAR3", "MAR4", "MAR5", "MAR6", "MAR7")
PAGE3_NAMES = ("CR", "9346CR", "BPAGE", "CONFIG0", "CONFIG1", "CONFIG2", "CONFIG3",
               *("-",) * 9)
READ_NAMES = (
    ("CR", "CLDA0", "CLDA1", "BNRY", "TSR", "NCR", "FIFO", "ISR",
     "CRDA0", "CRDA1", "8029ID0", "8029ID1", "RSR", "CNTR0", "CNTR1", "CNTR2"),
    _PAGE1,
    ("CR", "PSTART", "PSTOP", "RNPP", "TPSR", "LNPP", "ACU", "ACL",
     "-", "-", "-", "-", "RCR", "TCR", "DCR", "IMR"),
    PAGE3_NAMES,
)
WRITE_NAMES = (
    ("CR", "PSTART", "PSTOP", "BNRY", "TPSR", "TBCR0", "TBCR1", "ISR",
     "RSAR0", "RSAR1", "RBCR0", "RBCR1", "RCR", "TCR", "DCR", "IMR"),
    _PAGE1,
    ("CR", "CLDA0", "CLDA1", "RNPP", "-", "LNPP", "ACU", "ACL", *("-",) * 8),
    PAGE3_NAMES,
)

# ---- the buffer memory -------------------------------------------------------------------

MEM_SIZE = 0xC000  # 48 KiB: PROM image, a hole, 32 KiB of packet RAM
PROM_SIZE = 0x20  # the station PROM at 0x0000, each byte doubled
PMEM_START = 0x4000
PMEM_END = MEM_SIZE
RING_PAGE = 256  # receive-ring and TPSR page size

# ---- frame sizes on the wire (without the 4-byte FCS) -------------------------------------

ETH_ZLEN = 60  # minimum frame length; runts are padded to this
ETH_MAX_FRAME = 1518  # longest frame a real 8390 sees on Ethernet (1514 + 802.1Q tag)
ETH_FCS_LEN = 4  # the CRC the transmitter appends (unless TCR.CRC inhibits it)

# 10 Mbit/s wire time: 800 ns a byte for preamble + SFD (8), the frame (60 at least), the
# FCS and the 96-bit inter-frame gap (12).
WIRE_NS_PER_BYTE = 800
ETH_PREAMBLE_LEN = 8
ETH_IFG_LEN = 12
