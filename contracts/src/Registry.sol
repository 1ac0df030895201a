// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Collegium registry
/// @notice The on-chain state every Collegium node agrees on: system admins, registered nodes,
/// subsystems with their admins and participants, anchors of business-transaction batches,
/// the epoch schedule with its seeds, the nodes' attestations of each epoch's assignment root,
/// the nodes' liveness (the block each was last seen at), and the vote that changes the epoch period.
/// @dev Every state-changing function checks its caller and emits an event. Failures revert
/// with a custom error; the Python bindings decode it from the ABI and name it in the message.
contract Registry {
    // ------------------------------------------------------------------ constants

    /// @notice Domain tag mixed into every epoch seed (see `computeSeed`).
    bytes32 public constant SEED_DOMAIN = keccak256("collegium/epoch-seed/v1");

    /// @notice How far back `BLOCKHASH` reaches (EVM rule).
    uint256 public constant BLOCKHASH_WINDOW = 256;

    /// @notice Smallest and largest epoch period, in blocks.
    uint64 public constant MIN_EPOCH_PERIOD = 1;
    uint64 public constant MAX_EPOCH_PERIOD = 10_000_000;

    /// @notice A node is live at block b iff it was seen (registered, updated, attested or sent a
    /// heartbeat) in the last `LIVENESS_EPOCHS` epoch periods before b: `lastSeen + window > b`
    /// with `window = LIVENESS_EPOCHS * period in force at b` (see `livenessWindow`). A node that
    /// attests every epoch is always live; two periods leave it one whole epoch of slack.
    uint64 public constant LIVENESS_EPOCHS = 2;

    /// @notice Role bits of `rolesMask`: bit0 fe_system, bit1 fe_subsystem, bit2 be_system, bit3 be_subsystem.
    uint8 public constant ROLE_FE_SYSTEM = 1;
    uint8 public constant ROLE_FE_SUBSYSTEM = 2;
    uint8 public constant ROLE_BE_SYSTEM = 4;
    uint8 public constant ROLE_BE_SUBSYSTEM = 8;
    uint8 public constant ROLES_ALL = 15;

    /// @notice Subsystem names are 1..64 bytes; node endpoints 1..256 bytes; CIDs at most 128 bytes.
    uint256 public constant MAX_NAME_LENGTH = 64;
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;
    uint256 public constant MAX_CID_LENGTH = 128;

    /// @notice Assignment score preset (docs/assignment.md, "Preset"): bits of the slot and node
    /// hashes and of the draw, the splitmix64 finalizer, the draw bits used as the uniform
    /// variate, the fractional bits of the fixed-point log2, the working precision of the
    /// squaring loop that defines the log2 table, the table's index bits, and the shift
    /// applied before dividing by the capacity.
    uint256 public constant HASH_BITS = 64;
    uint256 private constant MIX_SHIFT_1 = 30;
    uint64 private constant MIX_MULTIPLIER_1 = 0xbf58476d1ce4e5b9;
    uint256 private constant MIX_SHIFT_2 = 27;
    uint64 private constant MIX_MULTIPLIER_2 = 0x94d049bb133111eb;
    uint256 private constant MIX_SHIFT_3 = 31;
    uint256 public constant DRAW_BITS = 48;
    uint256 public constant LOG2_FRACTION_BITS = 32;
    uint256 public constant LOG2_WORKING_BITS = 64;
    uint256 public constant LOG2_TABLE_BITS = 10;
    uint256 private constant LOG2_INTERPOLATION_BITS = DRAW_BITS - LOG2_TABLE_BITS;
    uint256 public constant SCORE_SHIFT = 26;
    bytes4 private constant DOMAIN_NODE = 0x07000000;

    /// @notice EIP-712 signed actions (`relay`): the domain is
    /// `EIP712Domain(name "Collegium Registry", version "1", chainId, verifyingContract this)`.
    string public constant EIP712_NAME = "Collegium Registry";
    string public constant EIP712_VERSION = "1";
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant ACTION_TYPEHASH = keccak256(
        "Action(string action,string subsystem,address account,string data,address signer,uint256 nonce,uint256 deadline)"
    );
    /// @dev secp256k1n / 2: a signature with a larger `s` is malleable (EIP-2) and refused.
    uint256 private constant HALF_CURVE_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @notice A join request's message is at most 280 bytes; a subsystem keeps at most 1,000
    /// pending requests (admins deny to make room).
    uint256 public constant MAX_JOIN_MESSAGE_LENGTH = 280;
    uint256 public constant MAX_PENDING_JOINS = 1000;

    /// @notice Role domains of the assignment (docs/assignment.md, "Domain types").
    bytes4 public constant DOMAIN_FE_SYSTEM = 0x01000000;
    bytes4 public constant DOMAIN_FE_SUBSYSTEM = 0x02000000;
    bytes4 public constant DOMAIN_BE_SYSTEM = 0x03000000;
    bytes4 public constant DOMAIN_BE_SUBSYSTEM = 0x04000000;

    // ------------------------------------------------------------------ errors

    error NotSystemAdmin(address caller);
    error AlreadySystemAdmin(address account);
    error SystemAdminNotFound(address account);
    error LastSystemAdmin(address account);
    error ZeroAddress();

    error NotRegisteredNode(address caller);
    error NodeAlreadyRegistered(address node);
    error InvalidCapacity(uint32 capacity);
    error InvalidRoles(uint8 rolesMask);
    error InvalidEndpoint(uint256 length);
    /// @notice The endpoint is not `http://` or `https://` followed by a host, or byte `offset`
    /// is whitespace, a control or non-ASCII byte, an at sign (credentials), `?` (query), `#`
    /// (fragment) or a backslash.
    error MalformedEndpoint(uint256 offset);

    error InvalidSubsystemName(uint256 length);
    error SubsystemAlreadyExists(string name);
    error UnknownSubsystem(string name);
    error NotSubsystemAdmin(string name, address caller);
    error AlreadySubsystemAdmin(string name, address account);
    error SubsystemAdminNotFound(string name, address account);
    error LastSubsystemAdmin(string name, address account);
    error AlreadyParticipant(string name, address account);
    error ParticipantNotFound(string name, address account);
    error InvalidCid(uint256 length);

    error JoinAlreadyPending(string name, address account);
    error NoJoinRequest(string name, address account);
    error JoinMessageTooLong(uint256 length);
    error TooManyJoinRequests(string name);

    /// @notice A signed action (`relay`) whose deadline (unix seconds) has passed.
    error SignatureExpired(uint256 deadline, uint256 timestamp);
    /// @notice A signed action whose nonce is not the signer's next one (a replay, or a gap).
    error InvalidNonce(address signer, uint256 expected, uint256 got);
    /// @notice The signature of an action does not recover to its `signer` (`recovered` is
    /// zero for a malformed signature: length, v or a high s).
    error InvalidActionSignature(address signer, address recovered);
    error UnknownAction(string action);

    error InvalidAnchor(bytes32 root, uint64 treeSize, uint64 count);
    error IndexOutOfRange(uint256 index, uint256 length);

    error EpochNotStarted(uint64 epoch, uint256 boundaryBlock, uint256 currentBlock);
    error SeedAlreadyFixed(uint64 epoch);
    error SeedNotFixed(uint64 epoch);
    error SeedMismatch(uint64 epoch, bytes32 fixedSeed, bytes32 given);
    error EpochInFuture(uint64 epoch, uint64 currentEpoch);
    error AlreadyAttested(uint64 epoch, address node);
    error ZeroRoot();
    error UnknownRole(string role);

    error InvalidEpochPeriod(uint64 period);
    error UnknownProposal(uint256 id);
    error ProposalAlreadyExecuted(uint256 id);
    error AlreadyVoted(uint256 id, address node);
    error NoMajority(uint256 id, uint256 votes, uint256 activeNodes);

    // ------------------------------------------------------------------ events

    event SystemAdminAdded(address indexed account, address indexed by);
    event SystemAdminRemoved(address indexed account, address indexed by);
    event FrontendSet(string cid, address indexed by);

    event NodeRegistered(address indexed node, string endpoint, uint32 capacity, uint8 rolesMask, string home);
    event NodeUpdated(address indexed node, string endpoint, uint32 capacity, uint8 rolesMask, string home);
    event NodeLeft(address indexed node);
    event Heartbeat(address indexed node);

    event SubsystemCreated(bytes32 indexed id, string name, address indexed creator);
    event SubsystemAdminAdded(bytes32 indexed id, address indexed account, address indexed by);
    event SubsystemAdminRemoved(bytes32 indexed id, address indexed account, address indexed by);
    event ParticipantAdded(bytes32 indexed id, address indexed account, address indexed by);
    event ParticipantRemoved(bytes32 indexed id, address indexed account, address indexed by);
    event SubsystemFrontendSet(bytes32 indexed id, string cid, address indexed by);
    event JoinRequested(bytes32 indexed id, address indexed account, string message);
    event JoinDenied(bytes32 indexed id, address indexed account, address indexed by);
    event JoinCancelled(bytes32 indexed id, address indexed account);

    /// @notice `signer`'s action number `nonce` was relayed by `relayer` (who paid the gas).
    event ActionRelayed(address indexed signer, uint256 nonce, string action, address indexed relayer);

    event Anchored(
        uint256 indexed index,
        bytes32 indexed root,
        address indexed node,
        string subsystem,
        uint64 treeSize,
        uint64 count,
        string batchCid
    );

    event SeedFixed(uint64 indexed epoch, bytes32 seed, uint256 sourceBlock);
    event Attested(uint64 indexed epoch, address indexed node, bytes32 root);

    event EpochPeriodProposed(uint256 indexed id, address indexed proposer, uint64 newPeriod);
    event EpochPeriodVoted(uint256 indexed id, address indexed node, uint256 votes, uint256 activeNodes);
    event EpochPeriodChanged(uint256 indexed id, uint64 oldPeriod, uint64 newPeriod, uint64 startEpoch, uint64 startBlock);

    // ------------------------------------------------------------------ storage

    struct Node {
        string endpoint;
        string home;
        uint32 capacity;
        uint8 rolesMask;
        bool active;
        uint64 registeredAt;
        uint64 lastSeen; // block of the node's last register/update/attest/heartbeat (same slot)
    }

    struct Subsystem {
        bool exists;
        string name;
        uint256 adminCount;
        mapping(address => bool) admins;
        address[] participantList;
        mapping(address => uint256) participantSlot; // index + 1; 0 = not a participant
        string frontendCid;
        address[] pendingList; // join requests waiting for an admin
        mapping(address => uint256) pendingSlot; // index + 1
        mapping(address => string) pendingMessage;
        address[] adminList; // the admins, enumerable (`subsystemAdmins`)
        mapping(address => uint256) adminSlot; // index + 1
    }

    /// @notice A person's on-chain action, signed as EIP-712 typed data and relayed by anyone.
    /// `action` names it; the fields it does not use must be empty (see `relay`).
    struct Action {
        string action;
        string subsystem;
        address account;
        string data;
        address signer;
        uint256 nonce;
        uint256 deadline;
    }

    struct AnchorRecord {
        bytes32 root;
        uint64 treeSize;
        uint64 count;
        uint64 blockNumber;
        address node;
        string subsystem;
        string batchCid;
    }

    /// @notice A stretch of the epoch schedule with one period: epoch `startEpoch` begins at
    /// block `startBlock`, and every `length` blocks after it a new epoch begins.
    struct Period {
        uint64 startEpoch;
        uint64 startBlock;
        uint64 length;
    }

    struct Proposal {
        uint64 newPeriod;
        bool executed;
        address proposer;
        address[] voters;
        mapping(address => bool) voted;
    }

    struct SeedRecord {
        bytes32 seed;
        uint64 sourceBlock;
        uint64 fixedAt;
    }

    address[] private _systemAdmins;
    mapping(address => uint256) private _systemAdminSlot; // index + 1

    string private _frontendCid;

    mapping(address => Node) private _nodes;
    address[] private _activeNodes;
    mapping(address => uint256) private _nodeSlot; // index + 1

    mapping(bytes32 => Subsystem) private _subsystems;
    bytes32[] private _subsystemIds;

    AnchorRecord[] private _anchors;

    Period[] private _periods;
    mapping(uint64 => SeedRecord) private _seeds;
    mapping(uint64 => mapping(address => bytes32)) private _attestations;

    Proposal[] private _proposals;

    mapping(address => uint256) private _nonces;

    // ------------------------------------------------------------------ modifiers

    modifier onlySystemAdmin() {
        _requireSystemAdmin(msg.sender);
        _;
    }

    modifier onlyNode() {
        if (_nodeSlot[msg.sender] == 0) revert NotRegisteredNode(msg.sender);
        _;
    }

    /// @param epochPeriod_ Length of an epoch in blocks; epoch 0 starts at the deployment block.
    constructor(uint64 epochPeriod_) {
        if (epochPeriod_ < MIN_EPOCH_PERIOD || epochPeriod_ > MAX_EPOCH_PERIOD) {
            revert InvalidEpochPeriod(epochPeriod_);
        }
        _periods.push(Period({startEpoch: 0, startBlock: uint64(block.number), length: epochPeriod_}));
        _systemAdmins.push(msg.sender);
        _systemAdminSlot[msg.sender] = 1;
        emit SystemAdminAdded(msg.sender, msg.sender);
    }

    // ------------------------------------------------------------------ system admins

    function addSystemAdmin(address account) external onlySystemAdmin {
        _addSystemAdmin(account, msg.sender);
    }

    /// @notice Remove a system admin (an admin may remove itself); the last admin stays.
    function removeSystemAdmin(address account) external onlySystemAdmin {
        _removeSystemAdmin(account, msg.sender);
    }

    function isSystemAdmin(address account) external view returns (bool) {
        return _systemAdminSlot[account] != 0;
    }

    function systemAdmins() external view returns (address[] memory) {
        return _systemAdmins;
    }

    function setFrontend(string calldata cid) external onlySystemAdmin {
        _setFrontend(cid, msg.sender);
    }

    function frontendCid() external view returns (string memory) {
        return _frontendCid;
    }

    // ------------------------------------------------------------------ nodes

    /// @notice Register the caller as an active node. `home` is the name of the node's home
    /// subsystem (its failure domain), 0..64 bytes; it need not exist yet.
    function registerNode(string calldata endpoint, uint32 capacity, uint8 rolesMask, string calldata home)
        external
    {
        if (_nodeSlot[msg.sender] != 0) revert NodeAlreadyRegistered(msg.sender);
        _checkNode(endpoint, capacity, rolesMask, home);
        _nodes[msg.sender] = Node({
            endpoint: endpoint,
            home: home,
            capacity: capacity,
            rolesMask: rolesMask,
            active: true,
            registeredAt: uint64(block.number),
            lastSeen: uint64(block.number)
        });
        _activeNodes.push(msg.sender);
        _nodeSlot[msg.sender] = _activeNodes.length;
        emit NodeRegistered(msg.sender, endpoint, capacity, rolesMask, home);
    }

    function updateNode(string calldata endpoint, uint32 capacity, uint8 rolesMask, string calldata home)
        external
        onlyNode
    {
        _checkNode(endpoint, capacity, rolesMask, home);
        Node storage n = _nodes[msg.sender];
        n.endpoint = endpoint;
        n.home = home;
        n.capacity = capacity;
        n.rolesMask = rolesMask;
        n.lastSeen = uint64(block.number);
        emit NodeUpdated(msg.sender, endpoint, capacity, rolesMask, home);
    }

    /// @notice The caller stops being an active node (its record stays, with active = false).
    function leaveNode() external onlyNode {
        _removeAt(_activeNodes, _nodeSlot, _nodeSlot[msg.sender]);
        _nodes[msg.sender].active = false;
        emit NodeLeft(msg.sender);
    }

    function nodeCount() external view returns (uint256) {
        return _activeNodes.length;
    }

    function nodeAt(uint256 i) external view returns (address) {
        if (i >= _activeNodes.length) revert IndexOutOfRange(i, _activeNodes.length);
        return _activeNodes[i];
    }

    function getNode(address node)
        external
        view
        returns (
            string memory endpoint,
            uint32 capacity,
            uint8 rolesMask,
            string memory home,
            bool active,
            uint64 registeredAt
        )
    {
        Node storage n = _nodes[node];
        return (n.endpoint, n.capacity, n.rolesMask, n.home, n.active, n.registeredAt);
    }

    function isNode(address account) external view returns (bool) {
        return _nodeSlot[account] != 0;
    }

    // ------------------------------------------------------------------ liveness

    /// @notice The caller (a registered node) says it is alive: its `lastSeen` becomes this
    /// block. `attest` does the same, so a node that attests every epoch never needs it.
    function heartbeat() external onlyNode {
        _nodes[msg.sender].lastSeen = uint64(block.number);
        emit Heartbeat(msg.sender);
    }

    /// @notice The block `node` was last seen at (0 if never registered).
    function lastSeen(address node) external view returns (uint64) {
        return _nodes[node].lastSeen;
    }

    /// @notice The liveness window at block `atBlock`, in blocks: `LIVENESS_EPOCHS` times the
    /// epoch period in force at `atBlock`.
    function livenessWindow(uint256 atBlock) public view returns (uint256) {
        return uint256(LIVENESS_EPOCHS) * _periodAt(atBlock).length;
    }

    /// @notice Whether `node` is an active node live at block `atBlock`:
    /// `lastSeen + livenessWindow(atBlock) > atBlock`. The block is an argument (not
    /// `block.number`) so that an `eth_call` at block b with `atBlock = b` gives the same answer
    /// on every client, whichever block context it runs the call in.
    function isLiveAt(address node, uint256 atBlock) public view returns (bool) {
        Node storage n = _nodes[node];
        return n.active && uint256(n.lastSeen) + livenessWindow(atBlock) > atBlock;
    }

    /// @notice The active nodes live at block `atBlock` (contract order), the input of the
    /// assignment of an epoch whose boundary block is `atBlock`. If none is live, every active
    /// node is returned and `keptAll` is true: the assignment never goes to nobody.
    function liveNodesAt(uint256 atBlock) external view returns (address[] memory nodes, bool keptAll) {
        uint256 total = _activeNodes.length;
        uint256 live;
        for (uint256 i = 0; i < total; i++) {
            if (isLiveAt(_activeNodes[i], atBlock)) live++;
        }
        if (live == 0) return (_activeNodes, total > 0);
        nodes = new address[](live);
        uint256 j;
        for (uint256 i = 0; i < total; i++) {
            if (isLiveAt(_activeNodes[i], atBlock)) nodes[j++] = _activeNodes[i];
        }
    }

    // ------------------------------------------------------------------ subsystems

    /// @notice Create subsystem `name` (1..64 bytes); the caller becomes its first admin and participant.
    function createSubsystem(string calldata name) external {
        _createSubsystem(name, msg.sender);
    }

    function addSubsystemAdmin(string calldata name, address account) external {
        _addSubsystemAdmin(name, account, msg.sender);
    }

    /// @notice Remove a subsystem admin (an admin may remove itself); the last admin stays.
    function removeSubsystemAdmin(string calldata name, address account) external {
        _removeSubsystemAdmin(name, account, msg.sender);
    }

    /// @notice Add `account` as a participant (admins of `name`); a pending join request of
    /// `account` is thereby approved and cleared.
    function addParticipant(string calldata name, address account) external {
        _addParticipant(name, account, msg.sender);
    }

    function removeParticipant(string calldata name, address account) external {
        _removeParticipant(name, account, msg.sender);
    }

    function setSubsystemFrontend(string calldata name, string calldata cid) external {
        _setSubsystemFrontend(name, cid, msg.sender);
    }

    // ------------------------------------------------------------------ join requests

    /// @notice The caller asks to become a participant of `name`, with a message (at most
    /// `MAX_JOIN_MESSAGE_LENGTH` bytes) for its admins. One pending request per account;
    /// an admin approves it with `addParticipant` or refuses it with `denyJoin`.
    function requestJoin(string calldata name, string calldata message) external {
        _requestJoin(name, message, msg.sender);
    }

    /// @notice The caller withdraws its pending request to join `name`.
    function cancelJoin(string calldata name) external {
        _cancelJoin(name, msg.sender);
    }

    /// @notice An admin of `name` refuses `account`'s pending join request (it may ask again).
    function denyJoin(string calldata name, address account) external {
        _denyJoin(name, account, msg.sender);
    }

    /// @notice The accounts whose join request to `name` is pending (contract order).
    function joinRequests(string calldata name) external view returns (address[] memory) {
        return _existing(name).pendingList;
    }

    /// @notice Whether `account` has a pending request to join `name`, and its message.
    function joinRequest(string calldata name, address account)
        external
        view
        returns (bool pending, string memory message)
    {
        Subsystem storage s = _existing(name);
        return (s.pendingSlot[account] != 0, s.pendingMessage[account]);
    }

    function subsystemFrontend(string calldata name) external view returns (string memory) {
        return _existing(name).frontendCid;
    }

    function subsystemExists(string calldata name) external view returns (bool) {
        return _subsystems[keccak256(bytes(name))].exists;
    }

    function isParticipant(string calldata name, address account) external view returns (bool) {
        return _subsystems[keccak256(bytes(name))].participantSlot[account] != 0;
    }

    function isSubsystemAdmin(string calldata name, address account) external view returns (bool) {
        return _subsystems[keccak256(bytes(name))].admins[account];
    }

    /// @notice The admins of `name` (contract order).
    function subsystemAdmins(string calldata name) external view returns (address[] memory) {
        return _existing(name).adminList;
    }

    function subsystemCount() external view returns (uint256) {
        return _subsystemIds.length;
    }

    function subsystemAt(uint256 i) external view returns (string memory) {
        if (i >= _subsystemIds.length) revert IndexOutOfRange(i, _subsystemIds.length);
        return _subsystems[_subsystemIds[i]].name;
    }

    function participants(string calldata name) external view returns (address[] memory) {
        return _existing(name).participantList;
    }

    // ------------------------------------------------------------------ signed actions (EIP-712)

    /// @notice The next nonce `signer` must sign an action with.
    function nonces(address signer) external view returns (uint256) {
        return _nonces[signer];
    }

    /// @notice The EIP-712 domain separator of this registry on this chain.
    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH,
                keccak256(bytes(EIP712_NAME)),
                keccak256(bytes(EIP712_VERSION)),
                block.chainid,
                address(this)
            )
        );
    }

    /// @notice The EIP-712 digest a wallet signs for `a` (`eth_signTypedData_v4`).
    function actionDigest(Action calldata a) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                ACTION_TYPEHASH,
                keccak256(bytes(a.action)),
                keccak256(bytes(a.subsystem)),
                a.account,
                keccak256(bytes(a.data)),
                a.signer,
                a.nonce,
                a.deadline
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// @notice Perform `a` as `a.signer`, who signed it; anyone may send this (and pays the
    /// gas). Checked in order: the deadline (`SignatureExpired`), the nonce is the signer's next
    /// (`InvalidNonce`: a replay or a gap), the signature (`InvalidActionSignature`), then the
    /// action itself exactly as if the signer had called it (e.g. `NotSubsystemAdmin`).
    /// Actions and the fields they use (others must be empty or zero, else `UnknownAction`):
    /// createSubsystem(subsystem), requestJoin(subsystem, data = message), cancelJoin(subsystem),
    /// denyJoin(subsystem, account), addParticipant / removeParticipant / addSubsystemAdmin /
    /// removeSubsystemAdmin(subsystem, account), setSubsystemFrontend(subsystem, data = CID),
    /// addSystemAdmin / removeSystemAdmin(account), setFrontend(data = CID).
    function relay(Action calldata a, bytes calldata signature) external {
        if (block.timestamp > a.deadline) revert SignatureExpired(a.deadline, block.timestamp);
        uint256 expected = _nonces[a.signer];
        if (a.nonce != expected) revert InvalidNonce(a.signer, expected, a.nonce);
        address recovered = _recover(actionDigest(a), signature);
        if (recovered == address(0) || recovered != a.signer) revert InvalidActionSignature(a.signer, recovered);
        _nonces[a.signer] = expected + 1;
        emit ActionRelayed(a.signer, a.nonce, a.action, msg.sender);
        _dispatch(a);
    }

    // ------------------------------------------------------------------ anchors

    /// @notice Record the Merkle `root` of a batch of `count` business transactions whose log now
    /// holds `treeSize` entries; the batch itself is on IPFS at `batchCid`. `subsystem` is "" for
    /// a system-wide batch, else the name of an existing subsystem. Registered nodes only.
    function anchor(string calldata subsystem, bytes32 root, uint64 treeSize, uint64 count, string calldata batchCid)
        external
        onlyNode
        returns (uint256 index)
    {
        if (root == bytes32(0) || count > treeSize) revert InvalidAnchor(root, treeSize, count);
        if (bytes(subsystem).length != 0) _existing(subsystem);
        if (bytes(batchCid).length > MAX_CID_LENGTH) revert InvalidCid(bytes(batchCid).length);
        index = _anchors.length;
        _anchors.push(
            AnchorRecord({
                root: root,
                treeSize: treeSize,
                count: count,
                blockNumber: uint64(block.number),
                node: msg.sender,
                subsystem: subsystem,
                batchCid: batchCid
            })
        );
        emit Anchored(index, root, msg.sender, subsystem, treeSize, count, batchCid);
    }

    function anchorCount() external view returns (uint256) {
        return _anchors.length;
    }

    function getAnchor(uint256 i)
        external
        view
        returns (
            bytes32 root,
            uint64 treeSize,
            uint64 count,
            string memory batchCid,
            string memory subsystem,
            address node,
            uint64 blockNumber
        )
    {
        if (i >= _anchors.length) revert IndexOutOfRange(i, _anchors.length);
        AnchorRecord storage a = _anchors[i];
        return (a.root, a.treeSize, a.count, a.batchCid, a.subsystem, a.node, a.blockNumber);
    }

    // ------------------------------------------------------------------ epochs and seeds

    /// @notice The epoch that contains the current block.
    function currentEpoch() public view returns (uint64) {
        return _epochAt(block.number);
    }

    /// @notice The block at which epoch `e` starts (its boundary block). For an epoch beyond a
    /// pending period change this is the schedule as it stands now.
    function epochStartBlock(uint64 e) public view returns (uint256) {
        for (uint256 i = _periods.length; i > 0; i--) {
            Period storage p = _periods[i - 1];
            if (e >= p.startEpoch) {
                return uint256(p.startBlock) + uint256(e - p.startEpoch) * uint256(p.length);
            }
        }
        return _periods[0].startBlock; // unreachable: the first period starts at epoch 0
    }

    /// @notice The epoch period (in blocks) in force at the current block.
    function epochPeriod() external view returns (uint64) {
        return _periodAt(block.number).length;
    }

    /// @notice The schedule: a new period is appended, never rewritten once it has started.
    function periodCount() external view returns (uint256) {
        return _periods.length;
    }

    function periodAt(uint256 i) external view returns (uint64 startEpoch, uint64 startBlock, uint64 length) {
        if (i >= _periods.length) revert IndexOutOfRange(i, _periods.length);
        Period storage p = _periods[i];
        return (p.startEpoch, p.startBlock, p.length);
    }

    /// @notice Return the seed formula: keccak256(abi.encode(SEED_DOMAIN, epoch, sourceHash)).
    function computeSeed(uint64 epoch, bytes32 sourceHash) public pure returns (bytes32) {
        return keccak256(abi.encode(SEED_DOMAIN, epoch, sourceHash));
    }

    /// @notice Fix the seed of `epoch` for ever. Anyone may call it once the epoch's boundary
    /// block (`epochStartBlock(epoch)`) is in the past, i.e. block.number > boundary:
    /// seed = keccak256(abi.encode(SEED_DOMAIN, epoch, blockhash(boundary))).
    /// Look-ahead: the schedule names the boundary block in advance (a period change only moves
    /// boundaries of epochs that have not started), so the seed is a pure function of one block
    /// hash that exists before anyone can call this. Every node can compute it as soon as the
    /// boundary block is mined; this call stores it so it can be re-checked after `BLOCKHASH`
    /// forgets the block. Only the producer of the boundary block can grind it (by withholding
    /// or reordering), which no on-chain source avoids.
    /// `block.prevrandao` of the calling block is deliberately left out: it would let whoever
    /// calls first choose among one candidate seed per block, and py-evm (the embedded chain)
    /// executes with a prevrandao that differs from the mixHash it writes in the header, so the
    /// seed could not be re-derived from headers there.
    /// @dev Fallback: `BLOCKHASH` only reaches the last 256 blocks. If nobody fixed the seed
    /// within 256 blocks after the boundary, the source becomes the most recent block
    /// (block.number - 1) instead. Trade-off: the late caller then chooses, by choosing when to
    /// call, among up to one candidate seed per block (grinding); the fallback keeps the system
    /// live, and nodes prevent it by fixing the seed promptly. `SeedFixed.sourceBlock` and
    /// `seedInfo` say which block was used, so anyone can re-check the seed from block headers.
    function fixSeed(uint64 epoch) external returns (bytes32 seed) {
        uint256 boundary = epochStartBlock(epoch);
        if (block.number <= boundary) revert EpochNotStarted(epoch, boundary, block.number);
        if (_seeds[epoch].seed != bytes32(0)) revert SeedAlreadyFixed(epoch);
        uint256 source = boundary;
        bytes32 sourceHash = blockhash(boundary);
        if (sourceHash == bytes32(0)) {
            source = block.number - 1;
            sourceHash = blockhash(source);
        }
        seed = computeSeed(epoch, sourceHash);
        _seeds[epoch] = SeedRecord({seed: seed, sourceBlock: uint64(source), fixedAt: uint64(block.number)});
        emit SeedFixed(epoch, seed, source);
    }

    /// @notice The seed of `epoch`, or zero if not fixed yet.
    function seeds(uint64 epoch) external view returns (bytes32) {
        return _seeds[epoch].seed;
    }

    /// @notice The seed of `epoch` with the block whose hash it used and the block that fixed it.
    function seedInfo(uint64 epoch) external view returns (bytes32 seed, uint64 sourceBlock, uint64 fixedAt) {
        SeedRecord storage r = _seeds[epoch];
        return (r.seed, r.sourceBlock, r.fixedAt);
    }

    // ------------------------------------------------------------------ attestations

    /// @notice A registered node signs the assignment root it computed for `epoch` from `seed`
    /// (the epoch must have started and its seed be fixed). Once per (epoch, node); no
    /// overwrite. It also refreshes the node's `lastSeen` (see `heartbeat`).
    /// @dev `seed` must be the epoch's fixed seed: the seed commits to the boundary block's hash,
    /// so to the registry state the root was computed from. An attestation computed on a fork
    /// that a reorg replaced (another boundary block, another seed) reverts `SeedMismatch`
    /// wherever it lands, even if it was signed before the reorg and mined after it.
    function attest(uint64 epoch, bytes32 seed, bytes32 root) external onlyNode {
        if (root == bytes32(0)) revert ZeroRoot();
        uint64 current = currentEpoch();
        if (epoch > current) revert EpochInFuture(epoch, current);
        bytes32 fixedSeed = _seeds[epoch].seed;
        if (fixedSeed == bytes32(0)) revert SeedNotFixed(epoch);
        if (fixedSeed != seed) revert SeedMismatch(epoch, fixedSeed, seed);
        if (_attestations[epoch][msg.sender] != bytes32(0)) revert AlreadyAttested(epoch, msg.sender);
        _attestations[epoch][msg.sender] = root;
        _nodes[msg.sender].lastSeen = uint64(block.number);
        emit Attested(epoch, msg.sender, root);
    }

    /// @notice The root `node` attested for `epoch`, or zero.
    function attestationOf(uint64 epoch, address node) external view returns (bytes32) {
        return _attestations[epoch][node];
    }

    // ------------------------------------------------------------------ assignment score

    /// @notice The per-slot score of the hosting assignment, equal to Python's
    /// `node.assignment.compute_slot_score` (docs/assignment.md): the lowest score ranks first.
    /// `role` is a role id ("fe_system", "fe_subsystem", "be_system", "be_subsystem");
    /// `subsystem` is "" for a system-wide slot (real subsystem names are 1..64 bytes).
    /// With it anyone can settle a dispute about one slot's ranking on-chain.
    /// Reverts `UnknownRole` for another role id and `InvalidCapacity` for capacity 0.
    function slotScore(
        bytes32 seed,
        uint64 epoch,
        string calldata role,
        string calldata subsystem,
        address node,
        uint32 capacity
    ) external pure returns (uint256) {
        if (capacity == 0) revert InvalidCapacity(capacity);
        bytes32 roleSeed = keccak256(abi.encodePacked(_roleDomain(role), epoch, seed));
        bytes32 subsystemKey = bytes(subsystem).length == 0 ? bytes32(0) : keccak256(bytes(subsystem));
        uint64 slotHash = uint64(bytes8(keccak256(abi.encodePacked(roleSeed, subsystemKey))));
        uint64 nodeHash = uint64(bytes8(keccak256(abi.encodePacked(DOMAIN_NODE, epoch, seed, node))));
        uint256 draw = _mix64(slotHash ^ nodeHash);
        uint256 cost = (DRAW_BITS << LOG2_FRACTION_BITS) - _log2Draw((draw >> (HASH_BITS - DRAW_BITS)) + 1);
        return (cost << SCORE_SHIFT) / capacity;
    }

    // ------------------------------------------------------------------ epoch period vote

    /// @notice A registered node proposes a new epoch period and votes for it. Once more than
    /// half of the active nodes have voted, the new period takes effect at the next epoch
    /// boundary, so every epoch that has started keeps its start block (the schedule stays continuous).
    /// Only votes of nodes that are still active count. Proposals do not expire: an open one can
    /// still pass later (after more votes, or after non-voters leave).
    function proposeEpochPeriod(uint64 newPeriod) external onlyNode returns (uint256 id) {
        if (newPeriod < MIN_EPOCH_PERIOD || newPeriod > MAX_EPOCH_PERIOD) revert InvalidEpochPeriod(newPeriod);
        id = _proposals.length;
        Proposal storage p = _proposals.push();
        p.newPeriod = newPeriod;
        p.proposer = msg.sender;
        emit EpochPeriodProposed(id, msg.sender, newPeriod);
        _vote(id, p);
    }

    /// @notice A registered node votes for proposal `id`; executes it on a majority.
    function voteEpochPeriod(uint256 id) external onlyNode {
        Proposal storage p = _proposal(id);
        if (p.executed) revert ProposalAlreadyExecuted(id);
        if (p.voted[msg.sender]) revert AlreadyVoted(id, msg.sender);
        _vote(id, p);
    }

    /// @notice Anyone executes proposal `id` if its voters still active are more than half of
    /// the active nodes (e.g. after nodes left).
    function executeEpochPeriod(uint256 id) external {
        Proposal storage p = _proposal(id);
        if (p.executed) revert ProposalAlreadyExecuted(id);
        uint256 votes = _activeVotes(p);
        if (votes * 2 <= _activeNodes.length) revert NoMajority(id, votes, _activeNodes.length);
        _execute(id, p);
    }

    function proposalCount() external view returns (uint256) {
        return _proposals.length;
    }

    /// @notice Proposal `id`: its period, proposer, whether it was executed, and the votes of
    /// voters that are still active nodes.
    function getProposal(uint256 id)
        external
        view
        returns (uint64 newPeriod, address proposer, bool executed, uint256 votes)
    {
        Proposal storage p = _proposal(id);
        return (p.newPeriod, p.proposer, p.executed, _activeVotes(p));
    }

    function hasVoted(uint256 id, address node) external view returns (bool) {
        return _proposal(id).voted[node];
    }

    // ------------------------------------------------------------------ internals

    function _dispatch(Action calldata a) private {
        bytes32 h = keccak256(bytes(a.action));
        bool noSubsystem = bytes(a.subsystem).length == 0;
        bool noAccount = a.account == address(0);
        bool noData = bytes(a.data).length == 0;
        if (h == keccak256("createSubsystem") && noAccount && noData) {
            _createSubsystem(a.subsystem, a.signer);
        } else if (h == keccak256("requestJoin") && noAccount) {
            _requestJoin(a.subsystem, a.data, a.signer);
        } else if (h == keccak256("cancelJoin") && noAccount && noData) {
            _cancelJoin(a.subsystem, a.signer);
        } else if (h == keccak256("denyJoin") && noData) {
            _denyJoin(a.subsystem, a.account, a.signer);
        } else if (h == keccak256("addParticipant") && noData) {
            _addParticipant(a.subsystem, a.account, a.signer);
        } else if (h == keccak256("removeParticipant") && noData) {
            _removeParticipant(a.subsystem, a.account, a.signer);
        } else if (h == keccak256("addSubsystemAdmin") && noData) {
            _addSubsystemAdmin(a.subsystem, a.account, a.signer);
        } else if (h == keccak256("removeSubsystemAdmin") && noData) {
            _removeSubsystemAdmin(a.subsystem, a.account, a.signer);
        } else if (h == keccak256("setSubsystemFrontend") && noAccount) {
            _setSubsystemFrontend(a.subsystem, a.data, a.signer);
        } else if (h == keccak256("addSystemAdmin") && noSubsystem && noData) {
            _requireSystemAdmin(a.signer);
            _addSystemAdmin(a.account, a.signer);
        } else if (h == keccak256("removeSystemAdmin") && noSubsystem && noData) {
            _requireSystemAdmin(a.signer);
            _removeSystemAdmin(a.account, a.signer);
        } else if (h == keccak256("setFrontend") && noSubsystem && noAccount) {
            _requireSystemAdmin(a.signer);
            _setFrontend(a.data, a.signer);
        } else {
            revert UnknownAction(a.action);
        }
    }

    /// @dev ecrecover of a 65-byte r||s||v signature (v 27/28, or 0/1); zero if malformed or
    /// if s is in the upper half of the curve order (EIP-2).
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        if ((v != 27 && v != 28) || uint256(s) > HALF_CURVE_ORDER) return address(0);
        return ecrecover(digest, v, r, s);
    }

    function _requireSystemAdmin(address actor) private view {
        if (_systemAdminSlot[actor] == 0) revert NotSystemAdmin(actor);
    }

    function _adminOf(string calldata name, address actor) private view returns (Subsystem storage s) {
        s = _existing(name);
        if (!s.admins[actor]) revert NotSubsystemAdmin(name, actor);
    }

    function _addSystemAdmin(address account, address actor) private {
        if (account == address(0)) revert ZeroAddress();
        if (_systemAdminSlot[account] != 0) revert AlreadySystemAdmin(account);
        _systemAdmins.push(account);
        _systemAdminSlot[account] = _systemAdmins.length;
        emit SystemAdminAdded(account, actor);
    }

    function _removeSystemAdmin(address account, address actor) private {
        uint256 slot = _systemAdminSlot[account];
        if (slot == 0) revert SystemAdminNotFound(account);
        if (_systemAdmins.length == 1) revert LastSystemAdmin(account);
        _removeAt(_systemAdmins, _systemAdminSlot, slot);
        emit SystemAdminRemoved(account, actor);
    }

    function _setFrontend(string calldata cid, address actor) private {
        if (bytes(cid).length > MAX_CID_LENGTH) revert InvalidCid(bytes(cid).length);
        _frontendCid = cid;
        emit FrontendSet(cid, actor);
    }

    function _createSubsystem(string calldata name, address actor) private {
        uint256 len = bytes(name).length;
        if (len == 0 || len > MAX_NAME_LENGTH) revert InvalidSubsystemName(len);
        bytes32 id = keccak256(bytes(name));
        Subsystem storage s = _subsystems[id];
        if (s.exists) revert SubsystemAlreadyExists(name);
        s.exists = true;
        s.name = name;
        s.admins[actor] = true;
        s.adminCount = 1;
        s.adminList.push(actor);
        s.adminSlot[actor] = 1;
        s.participantList.push(actor);
        s.participantSlot[actor] = 1;
        _subsystemIds.push(id);
        emit SubsystemCreated(id, name, actor);
        emit SubsystemAdminAdded(id, actor, actor);
        emit ParticipantAdded(id, actor, actor);
    }

    function _addSubsystemAdmin(string calldata name, address account, address actor) private {
        Subsystem storage s = _adminOf(name, actor);
        if (account == address(0)) revert ZeroAddress();
        if (s.admins[account]) revert AlreadySubsystemAdmin(name, account);
        s.admins[account] = true;
        s.adminCount += 1;
        s.adminList.push(account);
        s.adminSlot[account] = s.adminList.length;
        emit SubsystemAdminAdded(keccak256(bytes(name)), account, actor);
    }

    function _removeSubsystemAdmin(string calldata name, address account, address actor) private {
        Subsystem storage s = _adminOf(name, actor);
        if (!s.admins[account]) revert SubsystemAdminNotFound(name, account);
        if (s.adminCount == 1) revert LastSubsystemAdmin(name, account);
        s.admins[account] = false;
        s.adminCount -= 1;
        _removeAt(s.adminList, s.adminSlot, s.adminSlot[account]);
        emit SubsystemAdminRemoved(keccak256(bytes(name)), account, actor);
    }

    function _addParticipant(string calldata name, address account, address actor) private {
        Subsystem storage s = _adminOf(name, actor);
        if (account == address(0)) revert ZeroAddress();
        if (s.participantSlot[account] != 0) revert AlreadyParticipant(name, account);
        _clearJoin(s, account);
        s.participantList.push(account);
        s.participantSlot[account] = s.participantList.length;
        emit ParticipantAdded(keccak256(bytes(name)), account, actor);
    }

    function _removeParticipant(string calldata name, address account, address actor) private {
        Subsystem storage s = _adminOf(name, actor);
        uint256 slot = s.participantSlot[account];
        if (slot == 0) revert ParticipantNotFound(name, account);
        _removeAt(s.participantList, s.participantSlot, slot);
        emit ParticipantRemoved(keccak256(bytes(name)), account, actor);
    }

    function _setSubsystemFrontend(string calldata name, string calldata cid, address actor) private {
        Subsystem storage s = _adminOf(name, actor);
        if (bytes(cid).length > MAX_CID_LENGTH) revert InvalidCid(bytes(cid).length);
        s.frontendCid = cid;
        emit SubsystemFrontendSet(keccak256(bytes(name)), cid, actor);
    }

    function _requestJoin(string calldata name, string calldata message, address actor) private {
        Subsystem storage s = _existing(name);
        if (bytes(message).length > MAX_JOIN_MESSAGE_LENGTH) revert JoinMessageTooLong(bytes(message).length);
        if (s.participantSlot[actor] != 0) revert AlreadyParticipant(name, actor);
        if (s.pendingSlot[actor] != 0) revert JoinAlreadyPending(name, actor);
        if (s.pendingList.length >= MAX_PENDING_JOINS) revert TooManyJoinRequests(name);
        s.pendingList.push(actor);
        s.pendingSlot[actor] = s.pendingList.length;
        s.pendingMessage[actor] = message;
        emit JoinRequested(keccak256(bytes(name)), actor, message);
    }

    function _cancelJoin(string calldata name, address actor) private {
        Subsystem storage s = _existing(name);
        if (s.pendingSlot[actor] == 0) revert NoJoinRequest(name, actor);
        _clearJoin(s, actor);
        emit JoinCancelled(keccak256(bytes(name)), actor);
    }

    function _denyJoin(string calldata name, address account, address actor) private {
        Subsystem storage s = _adminOf(name, actor);
        if (s.pendingSlot[account] == 0) revert NoJoinRequest(name, account);
        _clearJoin(s, account);
        emit JoinDenied(keccak256(bytes(name)), account, actor);
    }

    function _clearJoin(Subsystem storage s, address account) private {
        uint256 slot = s.pendingSlot[account];
        if (slot == 0) return;
        _removeAt(s.pendingList, s.pendingSlot, slot);
        delete s.pendingMessage[account];
    }

    /// @dev The domain of a role id; reverts `UnknownRole` for anything else.
    function _roleDomain(string calldata role) private pure returns (bytes4) {
        bytes32 h = keccak256(bytes(role));
        if (h == keccak256("fe_system")) return DOMAIN_FE_SYSTEM;
        if (h == keccak256("fe_subsystem")) return DOMAIN_FE_SUBSYSTEM;
        if (h == keccak256("be_system")) return DOMAIN_BE_SYSTEM;
        if (h == keccak256("be_subsystem")) return DOMAIN_BE_SUBSYSTEM;
        revert UnknownRole(role);
    }

    /// @dev log2(x) in fixed point with LOG2_FRACTION_BITS bits, 1 <= x <= 2**64, defined by this
    /// squaring loop truncations included (docs/assignment.md, compute_log2_fixed).
    /// y < 2**65, so y * y < 2**130 never overflows.
    function _log2Fixed(uint256 x) private pure returns (uint256 result) {
        uint256 integerPart = _bitLength(x) - 1;
        uint256 two = 1 << (LOG2_WORKING_BITS + 1);
        uint256 y = (x << LOG2_WORKING_BITS) >> integerPart;
        result = integerPart << LOG2_FRACTION_BITS;
        for (uint256 bit = LOG2_FRACTION_BITS; bit > 0; bit--) {
            y = (y * y) >> LOG2_WORKING_BITS;
            if (y >= two) {
                y >>= 1;
                result |= 1 << (bit - 1);
            }
        }
    }

    /// @dev log2(1 + i / 2**LOG2_TABLE_BITS) in fixed point (docs/assignment.md, LOG2_TABLE),
    /// computed on demand: the contract needs two entries per score.
    function _log2TableEntry(uint256 i) private pure returns (uint256) {
        return _log2Fixed((1 << LOG2_TABLE_BITS) + i) - (LOG2_TABLE_BITS << LOG2_FRACTION_BITS);
    }

    /// @dev log2(y) in fixed point for 1 <= y <= 2**DRAW_BITS (docs/assignment.md,
    /// compute_log2_draw): table entry plus linear interpolation of the remaining bits.
    function _log2Draw(uint256 y) private pure returns (uint256) {
        uint256 integerPart = _bitLength(y) - 1;
        uint256 mantissa = y << (DRAW_BITS - integerPart);
        uint256 index = (mantissa >> LOG2_INTERPOLATION_BITS) - (1 << LOG2_TABLE_BITS);
        uint256 fraction = mantissa & ((1 << LOG2_INTERPOLATION_BITS) - 1);
        uint256 low = _log2TableEntry(index);
        uint256 high = _log2TableEntry(index + 1);
        return (integerPart << LOG2_FRACTION_BITS) + low + (((high - low) * fraction) >> LOG2_INTERPOLATION_BITS);
    }

    /// @dev The splitmix64 finalizer (docs/assignment.md, mix64); arithmetic modulo 2**64.
    function _mix64(uint64 x) private pure returns (uint64) {
        unchecked {
            x = (x ^ (x >> MIX_SHIFT_1)) * MIX_MULTIPLIER_1;
            x = (x ^ (x >> MIX_SHIFT_2)) * MIX_MULTIPLIER_2;
            return x ^ (x >> MIX_SHIFT_3);
        }
    }

    /// @dev The number of bits of x (0 for 0), by binary search.
    function _bitLength(uint256 x) private pure returns (uint256 n) {
        for (uint256 step = 128; step > 0; step >>= 1) {
            if (x >> step != 0) {
                x >>= step;
                n += step;
            }
        }
        if (x != 0) n += 1;
    }

    function _checkNode(string calldata endpoint, uint32 capacity, uint8 rolesMask, string calldata home)
        private
        pure
    {
        _checkEndpoint(endpoint);
        if (capacity == 0) revert InvalidCapacity(capacity);
        if (rolesMask == 0 || rolesMask > ROLES_ALL) revert InvalidRoles(rolesMask);
        if (bytes(home).length > MAX_NAME_LENGTH) revert InvalidSubsystemName(bytes(home).length);
    }

    /// @dev Syntax only (nodes check addresses themselves): `http://` or `https://`, a non-empty
    /// rest of at most MAX_ENDPOINT_LENGTH bytes in all, none of them whitespace, control,
    /// non-ASCII, an at sign, `?`, `#` or a backslash.
    function _checkEndpoint(string calldata endpoint) private pure {
        bytes calldata b = bytes(endpoint);
        uint256 len = b.length;
        if (len == 0 || len > MAX_ENDPOINT_LENGTH) revert InvalidEndpoint(len);
        uint256 start;
        if (_startsWith(b, "http://")) start = 7;
        else if (_startsWith(b, "https://")) start = 8;
        else revert MalformedEndpoint(0);
        if (start == len) revert MalformedEndpoint(len);
        for (uint256 i = start; i < len; i++) {
            bytes1 c = b[i];
            if (c <= 0x20 || c >= 0x7f || c == "@" || c == "?" || c == "#" || c == "\\") {
                revert MalformedEndpoint(i);
            }
        }
    }

    function _startsWith(bytes calldata b, bytes memory prefix) private pure returns (bool) {
        if (b.length < prefix.length) return false;
        for (uint256 i = 0; i < prefix.length; i++) {
            if (b[i] != prefix[i]) return false;
        }
        return true;
    }

    function _existing(string calldata name) private view returns (Subsystem storage s) {
        s = _subsystems[keccak256(bytes(name))];
        if (!s.exists) revert UnknownSubsystem(name);
    }

    /// @dev Swap-and-pop the entry at `slot` (index + 1) of an enumerable address set.
    function _removeAt(address[] storage list, mapping(address => uint256) storage slotOf, uint256 slot) private {
        address removed = list[slot - 1];
        address last = list[list.length - 1];
        list[slot - 1] = last;
        slotOf[last] = slot;
        list.pop();
        delete slotOf[removed];
    }

    function _periodAt(uint256 blockNumber) private view returns (Period storage) {
        for (uint256 i = _periods.length; i > 1; i--) {
            if (blockNumber >= _periods[i - 1].startBlock) return _periods[i - 1];
        }
        return _periods[0];
    }

    function _epochAt(uint256 blockNumber) private view returns (uint64) {
        Period storage p = _periodAt(blockNumber);
        if (blockNumber < p.startBlock) return 0; // before deployment
        return p.startEpoch + uint64((blockNumber - p.startBlock) / p.length);
    }

    function _proposal(uint256 id) private view returns (Proposal storage) {
        if (id >= _proposals.length) revert UnknownProposal(id);
        return _proposals[id];
    }

    function _activeVotes(Proposal storage p) private view returns (uint256 votes) {
        uint256 n = p.voters.length;
        for (uint256 i = 0; i < n; i++) {
            if (_nodeSlot[p.voters[i]] != 0) votes++;
        }
    }

    function _vote(uint256 id, Proposal storage p) private {
        p.voted[msg.sender] = true;
        p.voters.push(msg.sender);
        uint256 votes = _activeVotes(p);
        emit EpochPeriodVoted(id, msg.sender, votes, _activeNodes.length);
        if (votes * 2 > _activeNodes.length) _execute(id, p);
    }

    /// @dev The new period starts at the next epoch boundary; a change already pending for that
    /// boundary is replaced (its period has not started, so no epoch moves).
    function _execute(uint256 id, Proposal storage p) private {
        p.executed = true;
        uint64 nextEpoch = currentEpoch() + 1;
        uint64 startBlock = uint64(epochStartBlock(nextEpoch));
        Period storage last = _periods[_periods.length - 1];
        uint64 oldPeriod = _periodAt(block.number).length;
        if (last.startEpoch == nextEpoch) {
            last.length = p.newPeriod;
        } else {
            _periods.push(Period({startEpoch: nextEpoch, startBlock: startBlock, length: p.newPeriod}));
        }
        emit EpochPeriodChanged(id, oldPeriod, p.newPeriod, nextEpoch, startBlock);
    }
}
