//! DLMS content: any bytes decode or are refused without a panic; what decodes re-encodes to the
//! same bytes; generated values and access requests round trip; nesting is bounded.

use proptest::prelude::*;

use crate::gbcs::dlms::*;

fn arb_data() -> impl Strategy<Value = Data> {
    let leaf = prop_oneof![
        Just(Data::Null),
        any::<bool>().prop_map(Data::Boolean),
        any::<i32>().prop_map(Data::DoubleLong),
        any::<u32>().prop_map(Data::DoubleLongUnsigned),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Data::OctetString),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Data::VisibleString),
        any::<i8>().prop_map(Data::Integer),
        any::<i16>().prop_map(Data::Long),
        any::<u8>().prop_map(Data::Unsigned),
        any::<u16>().prop_map(Data::LongUnsigned),
        any::<u8>().prop_map(Data::Enum),
    ];
    leaf.prop_recursive(4, 200, 10, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..10).prop_map(Data::Array),
            proptest::collection::vec(inner, 0..10).prop_map(Data::Structure),
        ]
    })
}

fn arb_ref() -> impl Strategy<Value = CosemRef> {
    (any::<u16>(), any::<[u8; 6]>(), any::<u8>()).prop_map(|(c, o, i)| CosemRef::new(c, o, i))
}

fn arb_request() -> impl Strategy<Value = AccessRequest> {
    (
        any::<u32>(),
        proptest::collection::vec(
            prop_oneof![
                arb_ref().prop_map(RequestSpec::Get),
                arb_ref().prop_map(RequestSpec::Set),
                arb_ref().prop_map(RequestSpec::Action),
            ],
            0..5,
        ),
        proptest::collection::vec(arb_data(), 0..5),
    )
        .prop_map(|(invoke_id, specs, data)| AccessRequest {
            invoke_id,
            specs,
            data,
        })
}

#[test]
fn nesting_deeper_than_the_bound_is_refused() {
    let mut deep = Data::Null;
    for _ in 0..MAX_DEPTH {
        deep = Data::Array(vec![deep]);
    }
    assert_eq!(Data::decode(&deep.to_bytes()), Ok(deep.clone()));
    let deeper = Data::Array(vec![deep]).to_bytes();
    assert_eq!(Data::decode(&deeper), Err(DlmsError::Depth));
    // A count larger than the bytes left is refused before anything is allocated for it.
    assert!(Data::decode(&[1, 0x82, 0xFF, 0xFF, 0]).is_err());
}

proptest! {
    #[test]
    fn values_round_trip(data in arb_data()) {
        let bytes = data.to_bytes();
        prop_assert_eq!(Data::decode(&bytes), Ok(data));
    }

    #[test]
    fn access_requests_round_trip(request in arb_request()) {
        let bytes = request.encode();
        prop_assert_eq!(AccessRequest::decode(&bytes), Ok(request));
    }

    #[test]
    fn any_bytes_decode_exactly_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(data) = Data::decode(&bytes) {
            prop_assert_eq!(data.to_bytes(), bytes.clone());
        }
        let mut request = vec![0xD9, 0x20, 0, 0, 1, 0];
        request.extend_from_slice(&bytes);
        if let Ok(decoded) = AccessRequest::decode(&request) {
            prop_assert_eq!(decoded.encode(), request);
        }
        let mut response = vec![0xDA, 0x20, 0, 0, 1, 0, 0];
        response.extend_from_slice(&bytes);
        if let Ok(decoded) = AccessResponse::decode(&response) {
            prop_assert_eq!(decoded.encode(), response);
        }
        let _ = DataNotification::decode(&bytes);
    }
}
