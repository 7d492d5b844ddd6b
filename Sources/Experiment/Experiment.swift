// The paper protocol.
import Reference
